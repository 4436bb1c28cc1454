"""What every command module shares: the Typer apps, the consoles, the common options and helpers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from typing_extensions import Annotated

from msda_cli.choices import FORMATS, spoken
from msda_cli.completion import choices as offer
from msda_cli.errors import MsdaError

app = typer.Typer(
    help="msda: train, attack, subsample and compare mixed-sample data augmentation methods.\n\n"
    "Quick start: `msda train --recipe digits-mixup` then `msda report`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # msda --install-completion: recipe names, run ids and every choice complete on TAB
)
runs_app = typer.Typer(help="List, find, compare, annotate and delete stored runs.", no_args_is_help=True)
subsets_app = typer.Typer(help="List the stored data subsets (made by `msda subsample`).", no_args_is_help=True)
recipes_app = typer.Typer(help="List and show the recipes (the papers' settings).", no_args_is_help=True)
analyze_app = typer.Typer(help="Analyses: coefficient maps a_jk, gradient products, loss landscapes.",
                          no_args_is_help=True)
plot_app = typer.Typer(help="Figures of stored runs: training curves.", no_args_is_help=True)
def _version(value: bool) -> None:
    if value:
        from msda_cli import __version__

        out.print(f"msda {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
):
    """msda: train, attack, subsample and compare mixed-sample data augmentation methods.

    Quick start: `msda train --recipe digits-mixup` then `msda report`.
    """


app.add_typer(runs_app, name="runs")
app.add_typer(recipes_app, name="recipes")
app.add_typer(analyze_app, name="analyze")
app.add_typer(subsets_app, name="subsets")
app.add_typer(plot_app, name="plot")

# Outside a terminal (pipes, CI logs) rich would wrap tables at 80 columns; give them room.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DbOption = Annotated[
    Optional[str],  # not a Path: a URL's // would collapse
    typer.Option("--db", envvar="MSDA_DB", help="Results database: a SQLite file (default results/msda.db) or a "
                 "PostgreSQL URL, postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE."),
]
FormatOption = Annotated[
    str, typer.Option("--format", "-f", help=f"Output format: {spoken(FORMATS)}.", autocompletion=offer(FORMATS))
]
DpiOption = Annotated[Optional[int], typer.Option("--dpi", help="Resolution of a PNG figure (default 200).")]
DataDirOption = Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data set.")]
# Where `msda train` and `msda reproduce` run their runs on this machine (engine/parallel.py).
JobsOption = Annotated[Optional[int], typer.Option(help="Runs at once, each its own process (CPU: cores split).")]
GpusOption = Annotated[Optional[str], typer.Option(help="GPUs to use, e.g. 0,1 (default: all, one run each).")]
GpusPerRunOption = Annotated[Optional[int], typer.Option("--gpus-per-run", help="GPUs per run.")]
CpuOption = Annotated[bool, typer.Option("--cpu", help="Train on the CPU even if a GPU is present.")]


def _list(text: Optional[str]) -> list[str]:
    from msda_cli.config import split_list

    return split_list(text)


def _ints(text: Optional[str], name: str) -> list[int]:
    try:
        return [int(t) for t in _list(text)]
    except ValueError:
        raise MsdaError(f"{name} expects comma-separated integers, got {text!r}") from None


def _progress():
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
                    disable=not err.is_terminal)  # logs and pipes get the per-epoch lines only


def _store(db: Optional[Path], create: bool = True, read_only: bool = False):
    from msda_cli.store import Store

    return Store(db, create=create, read_only=read_only)


def _has_accelerator() -> bool:
    import torch

    probe = getattr(torch, "accelerator", None)
    return bool(probe.is_available()) if probe is not None else torch.cuda.is_available()


def _check_out(path: Optional[Path], dpi: Optional[int] = None) -> None:
    """An --out file must be a .png, .pdf or .svg path in an existing directory (nothing is written otherwise)."""
    from msda_cli.plots import check_dpi, figure_format

    check_dpi(dpi)
    if path is None:
        return
    if path.is_dir():
        raise MsdaError(f"--out {path} is a directory; give a file name such as {path / 'figure.png'}")
    if not path.parent.is_dir():
        raise MsdaError(f"output directory {path.parent} does not exist")
    figure_format(path)
