"""The `msda` command line: one thin function per command, delegating to the package.

Bad input anywhere raises `MsdaError`; `main` turns it into one line on stderr and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from typing_extensions import Annotated

from msda_cli.checks import check_choice, check_float, check_int
from msda_cli import completion
from msda_cli.errors import MsdaError, RunFailed, disk_full

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
    Optional[Path],
    typer.Option("--db", envvar="MSDA_DB", help="Results database (default results/msda.db)."),
]
FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="Output format: rich, markdown, latex, csv or json.")
]
RunIdArgument = Annotated[str, typer.Argument(help="Run id (or a unique prefix).", autocompletion=completion.run_ids)]
DpiOption = Annotated[Optional[int], typer.Option("--dpi", help="Resolution of a PNG figure (default 200).")]


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


# ----- train --------------------------------------------------------------------------
@app.command()
def train(
    recipe: Annotated[Optional[str], typer.Option(
        "--recipe", "-r", autocompletion=completion.recipe_names,
        help="Recipe name (see `msda recipes list`) or a YAML file.")] = None,
    method: Annotated[Optional[str], typer.Option(help="Method(s), comma-separated: one run each.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Architecture(s), comma-separated.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seed(s), comma-separated, e.g. 0,1,2.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Train for this many epochs instead.")] = None,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Override a recipe key, e.g. --set optim.lr=0.05 (repeatable).")] = None,
    subset: Annotated[Optional[str], typer.Option(help="Train on a stored subset (id from `msda subsample`).")] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue RUN_ID from its last checkpoint.",
                                                  autocompletion=completion.run_ids)] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data set.")] = None,
    download: Annotated[bool, typer.Option(
        "--download", help="Download the data set into --data-dir (machines with internet).")] = False,
    cpu: Annotated[bool, typer.Option("--cpu", help="Train on the CPU even if a GPU is present.")] = False,
    jobs: Annotated[Optional[int], typer.Option(help="Runs at once, each its own process (CPU: cores split).")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="GPUs to use, e.g. 0,1 (default: all, one run each).")] = None,
    gpus_per_run: Annotated[Optional[int], typer.Option("--gpus-per-run", help="GPUs per run.")] = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", hidden=True, help="New run id.")] = None,
    name: Annotated[Optional[str], typer.Option(help="A name for the run(s), shown by `msda runs list`.")] = None,
    tag: Annotated[Optional[List[str]], typer.Option(
        "--tag", help="Tag the run(s), e.g. --tag baseline (repeatable).")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Train one run per (method, arch, seed) of a recipe, storing metrics and checkpoints.

    \b
    Examples:
      msda train --recipe digits-mixup
      msda train --recipe digits-mixup --method vanilla,mixup,cutmix --seeds 0,1
      msda train --recipe cifar100-gmix --arch wrn28-2 --data-dir ~/data --set optim.lr=0.1
      msda train --recipe digits-mixup --method vanilla,mixup --seeds 0,1 --jobs 2
      msda train --resume 3f2a1b9c
    """
    from accelerate import Accelerator

    from msda_cli.engine.launch import TrainRequest, preflight, train as train_runs

    if resume is None and recipe is None:
        raise MsdaError("give --recipe NAME (see `msda recipes list`) or --resume RUN_ID")
    from msda_cli.render import check_format
    from msda_cli.store.tags import check_tags

    check_format(fmt)
    tags = check_tags(tag or [])
    if resume is not None and (recipe or method or arch or seeds or set_ or subset or epochs or run_id or name or tags):
        raise MsdaError("--resume continues a run with its stored config; drop the other options")
    req = None
    if resume is None:
        req = TrainRequest(recipe=recipe, methods=_list(method), archs=_list(arch), seeds=_ints(seeds, "--seeds"),
                           epochs=epochs, sets=list(set_ or []), data_dir=data_dir, download=download,
                           subset_id=subset, run_id=run_id, name=name, tags=tags)
    if (jobs is not None and jobs != 1) or gpus is not None or gpus_per_run is not None:
        if resume is not None:
            raise MsdaError("--jobs, --gpus and --gpus-per-run start new runs; resume a run with --resume ID alone")
        from msda_cli.engine.parallel import train_in_parallel

        gpu_list = _ints(gpus, "--gpus") if gpus is not None else None
        raise typer.Exit(train_in_parallel(req, db, jobs, gpu_list, gpus_per_run, cpu, console=err, out=out))
    precision = preflight(req, db, resume_id=resume)
    # Without an accelerator, cpu=True is what makes Accelerate join a torchrun gloo group.
    accelerator = Accelerator(mixed_precision=precision, cpu=cpu or not _has_accelerator())
    from msda_cli.engine.train_view import RunsProgress, run_labels

    try:
        with RunsProgress(run_labels(req, db, resume), err) as progress:
            run_ids = train_runs(req, db, accelerator, progress=progress if accelerator.is_main_process else None,
                                 resume_id=resume)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run is stored interrupted; say how to go on
        if accelerator.is_main_process:
            _tell_interrupted(db)
        raise typer.Exit(130) from None
    if accelerator.is_main_process:
        _print_runs(_store(db), run_ids, fmt, title="Finished runs")
    accelerator.end_training()


def _tell_interrupted(db: Optional[Path]) -> None:
    """One line per run this process was training when it was stopped, with the command that continues it."""
    import os

    store = _store(db, read_only=True)
    db_flag = f" --db {db}" if db is not None else ""
    stopped = [r for r in store.list_runs(status="interrupted") if r.pid == os.getpid()]
    for run in stopped:
        planned = json.loads(run.config).get("epochs")
        err.print(f"msda: interrupted: run {run.id} ({run.method}, {run.arch}, seed {run.seed}) stopped after epoch "
                  f"{run.epochs_done} of {planned}; continue it with: msda train --resume {run.id}{db_flag}",
                  markup=False, highlight=False, soft_wrap=True)
    if not stopped:
        err.print("msda: interrupted before a run started; nothing was stored", markup=False)


# ----- eval ---------------------------------------------------------------------------
@app.command("eval")
def eval_(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on this data set's test split instead.")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data set.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Compute top-1, top-5, NLL and ECE (15 bins) of a run on the test split and store them."""
    from msda_cli.eval_command import run_eval
    from msda_cli.render import check_format, print_frame
    from msda_cli.runs import pick_device

    check_format(fmt)
    store = _store(db, create=False)
    run, frame = run_eval(store, run_id, pick_device(), dataset=dataset, data_dir=data_dir)
    print_frame(frame, fmt, title=f"Evaluation of run {run}", console=out)


# ----- robust -------------------------------------------------------------------------
@app.command()
def robust(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix) to measure.")],
    attack: Annotated[Optional[str], typer.Option(help="White-box attack: fgsm or pgd (L-inf).")] = None,
    eps: Annotated[float, typer.Option(help="Attack radius in 0-255 pixel units (8 means 8/255).")] = 8.0,
    steps: Annotated[int, typer.Option(help="PGD steps.")] = 10,
    step_size: Annotated[float, typer.Option("--step-size", help="PGD step size in pixel units.")] = 2.0,
    restarts: Annotated[int, typer.Option(help="PGD random restarts (per-example worst case).")] = 1,
    source: Annotated[Optional[str], typer.Option(
        help="Craft PGD examples on this run instead (gray-box if same arch, else black-box).")] = None,
    ood: Annotated[Optional[str], typer.Option(
        help="Out-of-distribution set: a data set name or a folder of class folders (AUPR, AUROC).")] = None,
    natural_adversarial: Annotated[Optional[str], typer.Option(
        "--natural-adversarial", help="ImageNet-A folder: accuracy over its 200 classes.")] = None,
    deform: Annotated[bool, typer.Option(
        "--deform", help="Accuracy under the eight deformations of MixupE Table 8.")] = False,
    corruptions: Annotated[Optional[str], typer.Option(
        help="CIFAR-10/100-C folder: accuracy per corruption and severity.")] = None,
    n_examples: Annotated[Optional[int], typer.Option(
        "--n-examples", help="Evaluate a fixed subset of N test examples.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per batch on the device.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the subset, random starts and deformations.")] = 0,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data sets.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Attack and probe a trained run; every number is stored (kind robust) with its settings.

    \b
    Examples:
      msda robust 3f2a --attack pgd --eps 8 --step-size 2 --steps 10
      msda robust 3f2a --attack pgd --source 9c1d          # transfer attack
      msda robust 3f2a --ood fashion-mnist --deform
      msda robust 3f2a --corruptions ~/data/CIFAR-100-C
    """
    import pandas as pd

    from msda_cli.render import check_format, print_frame
    from msda_cli.robust.command import RobustRequest, run_robust
    from msda_cli.runs import pick_device

    check_format(fmt)
    req = RobustRequest(attack=attack, eps=eps, steps=steps, step_size=step_size, restarts=restarts, source=source,
                        ood=ood, natural_adversarial=natural_adversarial, deform=deform, corruptions=corruptions,
                        n_examples=n_examples, batch_size=batch_size, seed=seed, data_dir=data_dir)
    store = _store(db, create=False)
    run, rows = run_robust(store, run_id, req, pick_device(),
                           log=lambda msg: err.print(f"note: {msg}", markup=False))
    frame = pd.DataFrame([{"measure": name, "value": value,
                           "settings": ", ".join(f"{k}={v}" for k, v in params.items())}
                          for name, value, _, params in rows])
    print_frame(frame, fmt, title=f"Robustness of run {run} (values in %)", console=out)


# ----- preview ------------------------------------------------------------------------
@app.command()
def preview(
    method: Annotated[str, typer.Option(
        "--method", "--methods", "-m", help="Method(s), comma-separated, or `all` (one row each).")],
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="Figure to write: .png, .pdf or .svg.")] = Path("preview.png"),
    lam: Annotated[Optional[float], typer.Option(help="Mixing weight λ of the first image; omit to draw it.")] = 0.65,
    images: Annotated[Optional[List[Path]], typer.Option(
        "--images", help="Your source images (two or more), e.g. --images a.png b.png.")] = None,
    more_images: Annotated[Optional[List[Path]], typer.Argument(hidden=True)] = None,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Method hyperparameter, e.g. --set r=0.75 (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random draws (box positions, partners).")] = 0,
    dpi: DpiOption = None,
):
    """Draw the papers' mixed-sample figure: two sources, the mixed image and its mask.

    \b
    Examples:
      msda preview --method hmix --lam 0.65 --out hmix.png
      msda preview --methods all --out all.pdf
      msda preview --method gmix --images cat.png dog.png --out gmix.png
    """
    from msda_cli.config import parse_assignments
    from msda_cli.mixing.preview import render_preview

    if more_images and not images:
        raise MsdaError(f"unexpected argument {more_images[0]}; images go after --images")
    paths = list(images or []) + list(more_images or [])
    for p in paths:
        if not p.is_file():
            raise MsdaError(f"image {p} does not exist")
    if paths and len(paths) < 2:
        raise MsdaError("--images needs at least two images")
    if lam is not None:
        check_float("--lam", lam, min=0, max=1)
    _check_out(out_path, dpi)
    hparams = parse_assignments(set_)
    methods = _list(method)
    written = render_preview(methods, out_path, lam=lam, images=paths or None, seed=seed, hparams=hparams or None,
                             dpi=dpi)
    out.print(f"wrote {written}")


# ----- report -------------------------------------------------------------------------
@app.command()
def report(
    table: Annotated[Optional[str], typer.Option(
        "--table", "-t", help="A paper table id (see --list-tables), e.g. 2 or dcutmix-1.")] = None,
    list_tables: Annotated[bool, typer.Option("--list-tables", help="List the paper tables and exit.")] = False,
    rows: Annotated[str, typer.Option(
        help="Row key(s) of an ad-hoc pivot: run columns or config keys (mixer.alpha).")] = "method",
    cols: Annotated[str, typer.Option(help="Column key(s) of an ad-hoc pivot.")] = "arch",
    metric: Annotated[Optional[str], typer.Option(
        help="Metric: top1, error, top5, nll, ece, pgd, ... (default top1).")] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Keep runs with key=value, e.g. dataset=digits or mixer.r=0.5 (repeatable).")] = None,
    paper: Annotated[bool, typer.Option(
        "--paper", help="Show the published value beside each cell, and our difference.")] = False,
    runs: Annotated[bool, typer.Option("--runs", help="List the run ids behind each cell.")] = False,
    include_unfinished: Annotated[bool, typer.Option(
        "--include-unfinished", help="Also count running, failed and interrupted runs.")] = False,
    caption: Annotated[Optional[str], typer.Option(help="Replace the table's caption (every text format).")] = None,
    label: Annotated[Optional[str], typer.Option(
        help="LaTeX \\label of the table (default tab:msda-<table id>).")] = None,
    landscape: Annotated[bool, typer.Option("--landscape", help="LaTeX: a sidewaystable (package rotating).")] = False,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Print a paper's table, or any pivot of the stored runs, with mean ± std over seeds.

    \b
    Examples:
      msda report --list-tables
      msda report --table 2 --paper
      msda report --rows method --cols arch --metric top1 --where dataset=digits
      msda report --table dcutmix-1 --format latex
      msda report --table 2 --paper --format latex --label tab:cifar --caption "Top-1 accuracy on CIFAR-100."
    """
    import pandas as pd

    from msda_cli import report as reporting
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    reporting.check_label(label)
    if list_tables:
        specs = reporting.list_tables()
        print_frame(pd.DataFrame([{"id": t.id, "paper": t.paper, "caption": t.caption} for t in specs]),
                    fmt, title="Paper tables", console=out)
        return
    store = _store(db, read_only=True)
    built = reporting.build_report(store.final_metrics_frame(), table=table, rows=rows, cols=cols, metric=metric,
                                   where=list(where or []), paper=paper, include_unfinished=include_unfinished,
                                   show_runs=runs, subsets=store.list_subsets())
    if fmt == "rich":
        out.print(reporting.render_rich(built, caption))
    else:
        print(reporting.render(built, fmt, caption=caption, label=label, landscape=landscape), end="")


# ----- reproduce ----------------------------------------------------------------------
@app.command()
def reproduce(
    table: Annotated[str, typer.Option("--table", "-t", help="The table (see `msda report --list-tables`).")],
    seeds: Annotated[str, typer.Option(help="Seeds of every cell, comma-separated.")] = "0,1,2",
    arch: Annotated[Optional[str], typer.Option(help="Only the cells of these architectures, comma-separated.")] = None,
    rows: Annotated[Optional[str], typer.Option(help="Only these rows (labels or methods), comma-separated.")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data sets.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and what is missing; run nothing.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="Train every run this long (another setting).")] = None,
    set_: Annotated[Optional[List[str]], typer.Option("--set", help="Override a key in every run.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also resume runs that failed.")] = False,
    jobs: Annotated[Optional[int], typer.Option(help="Runs at once, each its own process (CPU: cores split).")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="GPUs to use, e.g. 0,1 (default: all, one run each).")] = None,
    gpus_per_run: Annotated[Optional[int], typer.Option("--gpus-per-run", help="GPUs per run.")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Train on the CPU even if a GPU is present.")] = False,
    db: DbOption = None,
):
    """Train what a paper table lacks (skip finished runs, resume interrupted ones), measure, print the table.

    \b
    Examples:
      msda reproduce --table digits --seeds 0,1 --jobs 2
      msda reproduce --table 2 --seeds 0,1,2 --data-dir ~/data --dry-run
      msda reproduce --table 2 --arch resnet56 --rows hmix,gmix --data-dir ~/data --gpus 0,1
      msda reproduce --table dcutmix-5 --data-dir /data --epochs 2     # a smoke test: its own setting
    """
    from msda_cli.reproduce import Request, reproduce as run_reproduction

    if epochs is not None:
        check_int("--epochs", epochs, min=1)
    req = Request(table=table, seeds=tuple(_ints(seeds, "--seeds")), archs=tuple(_list(arch)), rows=tuple(_list(rows)),
                  epochs=epochs, sets=tuple(set_ or ()), data_dir=data_dir, retry_failed=retry_failed)
    launcher = dict(jobs=jobs, gpus=_ints(gpus, "--gpus") if gpus is not None else None, gpus_per_run=gpus_per_run,
                    cpu=cpu)
    raise typer.Exit(run_reproduction(req, db, dry_run, launcher, out=out, err=err))


# ----- subsample ----------------------------------------------------------------------
@app.command()
def subsample(
    run_id: Annotated[str, typer.Argument(
        help="Trained run whose model scores its training set (id or unique prefix).")],
    ratio: Annotated[Optional[str], typer.Option(
        help="Subset ratio(s) t in (0, 1], comma-separated: one subset each.")] = None,
    measure: Annotated[str, typer.Option(help="Measure(s), comma-separated: cv, mean, std or random.")] = "cv",
    order: Annotated[str, typer.Option(help="End of the measure to keep: high or low (high,low for both).")] = "high",
    select: Annotated[str, typer.Option(
        help="Per class: top or interval (the first round(t*N), or evenly spaced ranks).")] = "top",
    mixes: Annotated[int, typer.Option(help="DCutMix mixes M per anchor.")] = 10,
    partners: Annotated[int, typer.Option(help="Partner images K-1 per mix.")] = 2,
    partner_alpha: Annotated[str, typer.Option(
        "--partner-alpha", help="Dirichlet alpha of the partners' shares (e.g. 2/9).")] = "2/9",
    anchor_share: Annotated[str, typer.Option(
        "--anchor-share", help="The anchor's fixed share of the image, in (0, 1).")] = "1/3",
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Anchors per forward pass (each brings M mixes).")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the mixes and of the random measure.")] = 0,
    export: Annotated[Optional[str], typer.Option(
        help="Also write per-sample scores (index, label, mean, std, cv, losses) to this CSV.")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data set.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Score a run's training samples by DCutMix loss uncertainty and store per-class subsets."""
    import pandas as pd

    from msda_cli import subsample as sub
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    selections = sub.plan(_list(ratio), _list(measure), _list(order), _list(select))
    settings = sub.ScoreSettings(mixes=mixes, partners=partners, batch_size=batch_size, seed=seed,
                                 partner_alpha=sub.parse_fraction(partner_alpha, "--partner-alpha"),
                                 anchor_share=sub.parse_fraction(anchor_share, "--anchor-share")).check()
    store = _store(db, create=False)
    with _progress() as progress:
        result = sub.subsample(store, run_id, selections, settings, export=export, data_dir=data_dir,
                               progress=progress)
    frame = pd.DataFrame([{"id": s.id, "measure": s.measure, "order": json.loads(s.params).get("order") or "",
                           "select": json.loads(s.params)["select"], "ratio": s.ratio, "size": s.size}
                          for s in result.subsets])
    print_frame(frame, fmt, title=f"Subsets of run {result.subsets[0].source_run_id}", console=out)


# ----- analyze ------------------------------------------------------------------------
def _analysis_frame(rows: list[dict], fmt: str):
    """Rows as a frame; text formats show 4 significant digits (the values are small fractions)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if fmt in ("rich", "markdown", "latex"):
        for col in frame.columns:
            if pd.api.types.is_float_dtype(frame[col]) or frame[col].dtype == object:
                frame[col] = [("–" if v is None or v != v else f"{v:.4g}") if isinstance(v, float) or v is None
                              else v for v in frame[col]]
    return frame


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


@analyze_app.command("coeffs")
def analyze_coeffs(
    method: Annotated[str, typer.Option("--method", "-m", help="Method(s), comma-separated: one map each.")],
    lam: Annotated[float, typer.Option(help="The fixed mixing weight λ of the first image, in [0, 1].")] = 0.5,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Method hyperparameter, e.g. --set r=0.75 (repeatable).")] = None,
    size: Annotated[int, typer.Option(help="Image side in pixels (square images).")] = 32,
    draws: Annotated[int, typer.Option(help="Monte-Carlo masks per method.")] = 4000,
    max_offset: Annotated[int, typer.Option("--max-offset", help="Largest |dx|, |dy| of the map.")] = 8,
    margin: Annotated[int, typer.Option(
        help="Only pixels this far from the border (the GMix closed form holds inside).")] = 0,
    pixels: Annotated[str, typer.Option(
        help="interior: the same pixels (max-offset or more inside) at every offset; valid: every pair in the image.")
    ] = "interior",
    seed: Annotated[int, typer.Option(help="Seed of the mask draws.")] = 0,
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also draw the maps (one panel per method, one colour scale): .png, .pdf or .svg.")] = None,
    dpi: DpiOption = None,
    fmt: FormatOption = "rich",
):
    """Regularization coefficients a_jk = E[(1 − M_j)(1 − M_k)] at fixed λ, by pixel offset.

    The map A(dx, dy) = mean over pixels i of a_{i, i+(dx,dy)} (Figure 4), from the method's own sampler.

    Printed by offset distance beside the exact value where known: Mixup (1 − λ)², CutMix and HMix
    (all box positions), Stochastic Mixup & CutMix, GMix (λ >= 0.5, away from the border). No database.

    \b
    Examples:
      msda analyze coeffs --method mixup,cutmix,hmix,gmix --lam 0.5 --size 64 --out coeffs.png
      msda analyze coeffs --method hmix --set r=0.75 --format csv
      msda analyze coeffs --method gmix --lam 0.7 --size 64 --margin 20
    """
    from msda_cli.analysis.coeffs import check_geometry, check_lam, coefficient_mixer, estimate_map, plot_maps
    from msda_cli.config import parse_assignments
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    check_lam(lam)
    if pixels not in ("interior", "valid"):
        raise MsdaError(f"--pixels must be interior or valid, got {pixels!r}")
    interior = pixels == "interior"
    check_geometry(size, max_offset, margin, interior)
    _check_out(out_path, dpi)
    hparams = parse_assignments(set_)
    methods = _list(method)
    if not methods:
        raise MsdaError("--method needs at least one method name")
    per_method = {name: _method_settings(name, hparams, several=len(methods) > 1) for name in methods}
    unused = sorted(set(hparams) - {k for hp in per_method.values() for k in hp})
    if unused:
        raise MsdaError(f"none of the methods {', '.join(methods)} has hyperparameter {', '.join(map(repr, unused))}")
    for name in methods:  # every name and setting checked before any work
        coefficient_mixer(name, per_method[name])
    maps = [estimate_map(name, lam, size=size, draws=draws, max_offset=max_offset, seed=seed, margin=margin,
                         hparams=per_method[name], interior=interior) for name in methods]
    for cm in maps:
        for note in cm.notes:
            err.print(f"note: {note}", markup=False, highlight=False)
    rows = [row for cm in maps for row in cm.rows()]
    print_frame(_analysis_frame(rows, fmt), fmt, console=out,
                title=f"a_jk by offset distance (λ = {lam:g}, {size}×{size} px, {draws} draws)")
    if out_path is not None:
        plot_maps(maps, out_path, dpi)
        err.print(f"wrote {out_path}", markup=False, highlight=False)


def _method_settings(method: str, hparams: dict, several: bool) -> dict:
    """The --set values for `method`: all of them for one method; with several, the keys it has."""
    from msda_cli.mixing import MIXERS, method_hparams

    if not several:
        return dict(hparams)
    MIXERS.lookup(method)
    valid = method_hparams(method)
    return {k: v for k, v in hparams.items() if k in valid}


@analyze_app.command("gradprod")
def analyze_gradprod(
    run_ids: Annotated[List[str], typer.Argument(
        help="Trained image run(s) (id or unique prefix); several are overlaid in one figure.")],
    n_examples: Annotated[int, typer.Option("--n-examples", help="Test images (a fixed seeded subset).")] = 256,
    max_offset: Annotated[int, typer.Option("--max-offset", help="Largest |dx|, |dy| of the offset p.")] = 8,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per backward pass.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the image subset.")] = 0,
    output: Annotated[str, typer.Option(
        help="f: prob, logit or loss (prob: the true-class softmax, the paper's example).")] = "prob",
    channels: Annotated[str, typer.Option(
        help="Per-pixel gradient over channels: norm or sum (norm: Figure 5).")] = "norm",
    reduce: Annotated[str, typer.Option(
        help="Over images: mean or max (the mean of the per-image maxima, or the max: the slides).")] = "mean",
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also plot each run's map and their curves: .png, .pdf or .svg.")] = None,
    dpi: DpiOption = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data set.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Partial gradient product max_v |∂_v f(x) ∂_{v+p} f(x)| (eq. 12) of a run, by offset distance ‖p‖.

    f: the true-class softmax probability (the paper: "f_θ(x) (e.g., a softmax output of a neural network)").

    Gradients w.r.t. pixels in [0, 1]; one metric row per distance is stored (kind analysis, name gradprod).

    \b
    Examples:
      msda analyze gradprod 3f2a --n-examples 256 --max-offset 8 --out gradprod.png
      msda analyze gradprod 3f2a --output logit --reduce max --format csv
      msda analyze gradprod 3f2a 9c41 --out gradprod.pdf
    """
    from msda_cli.analysis.gradprod import check_request, gradprod, plot_gradprod
    from msda_cli.render import check_format
    from msda_cli.runs import pick_device

    check_format(fmt)
    check_request(n_examples, max_offset, batch_size, output, channels, reduce)
    _check_out(out_path, dpi)
    store = _store(db, create=False)
    runs = _distinct_runs(store, run_ids)
    results = [gradprod(store, run.id, n_examples=n_examples, max_offset=max_offset, batch_size=batch_size, seed=seed,
                        output=output, channels=channels, reduce=reduce, device=pick_device(), data_dir=data_dir)
               for run in runs]
    first = results[0]
    what = f"run {first.run_id}" if len(results) == 1 else f"{len(results)} runs"
    _store_analysis(store, runs, results, fmt, f"Gradient product, {what} (f={output}, {reduce} of {first.n_examples})",
                    plot_gradprod, out_path, dpi)


def _distinct_runs(store, run_ids: list[str]) -> list:
    """The stored runs named (ids or unique prefixes), each once; MsdaError for an unknown or repeated one."""
    runs = [store.get_run(r) for r in run_ids]
    if len({r.id for r in runs}) < len(runs):
        raise MsdaError("a run is named twice")
    return runs


def _store_analysis(store, runs: list, results: list, fmt: str, title: str, plot, out_path: Optional[Path],
                    dpi: Optional[int]) -> None:
    """Store each run analysis's rows (kind analysis), print them in one table, and plot them when asked."""
    from msda_cli.curves import common_title, distinct_labels
    from msda_cli.render import print_frame

    for res in results:
        store.add_metrics(res.run_id, "analysis", res.metric_rows())
    labels = distinct_labels(runs)
    rows = results[0].rows() if len(results) == 1 else [
        {"run": res.run_id, "label": label, **row} for res, label in zip(results, labels) for row in res.rows()]
    print_frame(_analysis_frame(rows, fmt), fmt, console=out, title=title)
    if out_path is not None:
        plot(results, labels, common_title(runs), out_path, dpi)
        err.print(f"wrote {out_path}", markup=False, highlight=False)


@analyze_app.command("landscape")
def analyze_landscape(
    run_ids: Annotated[List[str], typer.Argument(help="Trained run(s) (id or unique prefix); several are overlaid.")],
    span: Annotated[float, typer.Option(help="t runs over [-span, span].")] = 1.0,
    points: Annotated[int, typer.Option(help="Values of t (odd counts include t = 0, the trained weights).")] = 21,
    directions: Annotated[int, typer.Option(help="Independent random directions (the table shows their mean).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the directions and of the test subset.")] = 0,
    n_examples: Annotated[int, typer.Option("--n-examples", help="Test examples (a fixed seeded subset).")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per forward pass.")] = 256,
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also plot loss and top-1 against t: .png, .pdf or .svg.")] = None,
    dpi: DpiOption = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data set.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """1-D loss landscape (Li et al., 2018): test loss and top-1 of θ + t·d along random directions d.

    d is Gaussian and filter-normalized (each conv / linear filter of d has the norm of θ's filter;
    biases and BatchNorm parameters are not moved); BatchNorm uses its running statistics (eval mode).
    One metric row per (direction, t) is stored (kind analysis, names landscape_loss, landscape_top1).

    \b
    Examples:
      msda analyze landscape 3f2a --span 1 --points 21 --out landscape.png
      msda analyze landscape 3f2a --directions 5 --n-examples 1000 --format csv
      msda analyze landscape 3f2a 9c41 --out landscape.pdf
    """
    from msda_cli.analysis.landscape import check_request, landscape, plot_landscape
    from msda_cli.render import check_format
    from msda_cli.runs import pick_device

    check_format(fmt)
    check_request(span, points, directions, n_examples, batch_size)
    _check_out(out_path, dpi)
    store = _store(db, create=False)
    runs = _distinct_runs(store, run_ids)
    results = [landscape(store, run.id, span=span, points=points, directions=directions, seed=seed,
                         n_examples=n_examples, batch_size=batch_size, device=pick_device(), data_dir=data_dir)
               for run in runs]
    first = results[0]
    what = f"run {first.run_id}" if len(results) == 1 else f"{len(results)} runs"
    title = f"Loss landscape, {what} (mean of {directions} dir., n={first.n_examples})"
    _store_analysis(store, runs, results, fmt, title, plot_landscape, out_path, dpi)


# ----- plot, export -------------------------------------------------------------------
@plot_app.command("curves")
def plot_curves(
    run_ids: Annotated[Optional[List[str]], typer.Argument(
        help="Runs (ids or unique prefixes): one line each.")] = None,
    metric: Annotated[str, typer.Option(
        help="Per-epoch metric: train_loss, test_top1, lr or epoch_time_s.")] = "test_top1",
    table: Annotated[Optional[str], typer.Option(
        "--table", "-t", help="A paper table id: one mean ± std band per cell.")] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Runs with key=value (as msda report): a band per method × arch cell (repeatable).")] = None,
    cell: Annotated[Optional[str], typer.Option(
        help="Only this cell of the table, ROW/COL as the report labels it.")] = None,
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="Figure to write: .png, .pdf or .svg.")] = Path("curves.png"),
    dpi: DpiOption = None,
    db: DbOption = None,
):
    """Training curves of several runs in one figure, or each report cell's runs as mean ± std over seeds.

    \b
    Examples:
      msda plot curves 3f2a 9c41 --metric train_loss --out loss.pdf
      msda plot curves --where dataset=digits --metric test_top1 --out top1.png
      msda plot curves --table digits --cell Mixup/CNN --out mixup.svg
    """
    from msda_cli.curves import check_metric, cell_curves, common_title, plot_curves as draw, run_curves

    check_metric(metric)
    _check_out(out_path, dpi)
    grouped = table is not None or bool(where) or cell is not None
    if run_ids and grouped:
        raise MsdaError("give run ids or --table/--where/--cell, not both")
    if not run_ids and not grouped:
        raise MsdaError("give run ids, or --table / --where to draw a report's cells")
    if cell is not None and table is None and not where:
        raise MsdaError("--cell needs --table or --where")
    store = _store(db, read_only=True)
    curves, runs = (run_curves(store, list(run_ids), metric) if run_ids
                    else cell_curves(store, table, list(where or []), cell, metric))
    draw(curves, metric, common_title(runs), out_path, dpi)
    out.print(f"wrote {out_path}", markup=False, highlight=False)


@app.command("export")
def export(
    run_ids: Annotated[List[str], typer.Argument(help="Runs to export (ids or unique prefixes).")],
    to: Annotated[str, typer.Option("--to", help="Tracker: tensorboard or mlflow.")],
    dest: Annotated[str, typer.Argument(help="TensorBoard: a log directory; MLflow: a tracking URI (file:./mlruns).")],
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "msda",
    db: DbOption = None,
):
    """Export runs to a tracker: per-epoch metrics (step = epoch), final metrics, the config as params.

    TensorBoard: one sub-directory per run (DEST/RUN_ID), scalars under train/… and final/…, the
    config as text. MLflow: one MLflow run per run (named by its setting, tagged msda.run_id).

    \b
    Examples:
      msda export 3f2a 9c41 --to tensorboard tb/
      msda export 3f2a --to mlflow file:./mlruns
    """
    from msda_cli.export import TARGETS, export_runs

    if to not in TARGETS:
        raise MsdaError(f"--to must be one of {', '.join(TARGETS)}; got {to!r}")
    store = _store(db, read_only=True)
    runs = _distinct_runs(store, run_ids)
    written = export_runs(store, runs, to, dest, experiment=experiment)
    for line in written:
        out.print(line, markup=False, highlight=False)


# ----- runs ---------------------------------------------------------------------------
def _print_runs(store, run_ids, fmt, title="Runs"):
    from msda_cli.render import print_frame
    from msda_cli.store.summary import runs_summary

    print_frame(runs_summary(store, run_ids), fmt, title=title, console=out)


@runs_app.command("list")
def runs_list(
    status: Annotated[Optional[str], typer.Option(
        help="Only runs with this status: running, finished, failed or interrupted.")] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Only runs with key=value (a column, tag, or a config key such as optim.lr; key=a,b; key!=v).")] = None,
    sort: Annotated[Optional[str], typer.Option(help="Sort by a column, e.g. top1 (best first) or method.")] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Reverse the --sort order.")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Show at most N runs.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Every stored run with its status, progress (epochs, time left while running) and final test top-1.

    \b
    Examples:
      msda runs list --where method=mixup,cutmix --sort top1 --limit 5
      msda runs list --where tag=baseline --where optim.lr=0.05
    """
    from msda_cli.render import check_format, print_frame
    from msda_cli.report.find import sort_runs, where_mask
    from msda_cli.store.summary import runs_summary
    from msda_cli.store.tables import RUN_STATUSES

    check_format(fmt)
    if status is not None:
        check_choice("status", status, RUN_STATUSES)
    store = _store(db, read_only=True)  # reads only: a read-only or full disk will do, a missing database is empty
    frame = runs_summary(store)
    configs = store.runs_frame()["config"].reset_index(drop=True)
    conditions = list(where or []) + ([f"status={status}"] if status else [])
    keep = where_mask(frame.reset_index(drop=True), configs, conditions)
    frame = sort_runs(frame.reset_index(drop=True)[keep], sort, reverse)
    print_frame(frame.head(limit) if limit else frame, fmt, title=f"Runs in {store.path}", console=out)


@runs_app.command("show")
def runs_show(
    run_id: RunIdArgument,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """A run's details, its config and its metrics (json: all of it as one object)."""
    import pandas as pd

    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    store = _store(db, create=False, read_only=True)
    run = store.get_run(run_id)
    fields = ("id", "name", "recipe", "dataset", "arch", "method", "seed", "status", "epochs_done",
              "created_at", "finished_at", "heartbeat_at", "pid", "host", "checkpoint", "subset_id",
              "msda_version", "tags", "note", "error")
    metrics = store.metrics(run.id)
    frame = pd.DataFrame([{"kind": m.kind, "name": m.name, "epoch": m.epoch, "value": m.value,
                           "params": m.params if m.params != "{}" else ""} for m in metrics],
                         columns=["kind", "name", "epoch", "value", "params"])
    if fmt == "json":
        record = {key: getattr(run, key) for key in fields}
        record["config"] = json.loads(run.config)
        record["metrics"] = [{"kind": m.kind, "name": m.name, "epoch": m.epoch, "value": m.value,
                              "params": json.loads(m.params)} for m in metrics]
        print(json.dumps(record, indent=2, default=str))
        return
    if fmt == "rich":
        for key in fields:
            out.print(f"[bold]{key:>13}[/bold]  {getattr(run, key)}", highlight=False)
        out.print("[bold]       config[/bold]")
        out.print_json(run.config)
    final = frame[frame["epoch"].isna()]
    per_epoch = frame[frame["epoch"].notna()]
    if len(per_epoch):
        wide = per_epoch.pivot_table(index="epoch", columns="name", values="value", aggfunc="last").reset_index()
        wide["epoch"] = wide["epoch"].astype(int) + 1
        print_frame(wide, fmt, title="Per-epoch metrics", console=out)
    if len(final):
        print_frame(final.drop(columns=["epoch"]), fmt, title="Final metrics", console=out)


@runs_app.command("rm")
def runs_rm(
    run_ids: Annotated[Optional[List[str]], typer.Argument(
        help="Run id(s) to delete, with their metrics and files.", autocompletion=completion.run_ids)] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Delete the runs with key=value instead (as in `msda runs list --where`), e.g. tag=demo.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Also delete runs that are still running.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted and delete nothing.")] = False,
    db: DbOption = None,
):
    """Delete runs: their rows, metrics, subsets and run folders (asks first; --yes does not)."""
    import shutil

    if bool(run_ids) == bool(where):
        raise MsdaError("give the run ids to delete or --where key=value, not both")
    if where:
        from msda_cli.report.find import where_mask
        from msda_cli.store.summary import runs_summary

        reader = _store(db, read_only=True)  # a missing database has no runs to delete and is not created
        summary = runs_summary(reader).reset_index(drop=True)
        run_ids = list(summary["id"][where_mask(summary, reader.runs_frame()["config"].reset_index(drop=True), where)])
        if not run_ids:
            out.print(f"no runs with {' '.join(where)}: nothing to delete", markup=False, highlight=False)
            return
    store = _store(db, create=False, read_only=dry_run)
    runs = [store.get_run(r) for r in run_ids]  # all ids valid before anything is deleted
    folders = [store.run_dir(run.id) for run in runs]  # and every folder inside the results directory
    for run in runs:
        if run.status == "running" and not force:
            raise MsdaError(f"run {run.id} is running; stop it first or pass --force")
    listing = "\n".join(f"  {run.id}  {run.name}  ({run.status}, {folder})" for run, folder in zip(runs, folders))
    if dry_run:
        out.print(f"would delete {len(runs)} run(s):\n{listing}", markup=False, highlight=False)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise MsdaError(f"runs rm deletes {len(runs)} run(s) for good; pass --yes to confirm without a terminal")
        out.print(f"{listing}", markup=False, highlight=False)
        if not typer.confirm(f"Delete these {len(runs)} run(s) and their files?", default=False):
            out.print("nothing deleted")
            raise typer.Exit(1)
    from msda_cli.subsets import delete_subset_files

    for run, folder in zip(runs, folders):
        delete_subset_files(store, run.id)
        store.delete_run(run.id)  # a trainer of a --force'd run finds its lease gone and stops
        shutil.rmtree(folder, ignore_errors=True)
        out.print(f"deleted run {run.id} ({run.name})", markup=False, highlight=False)


@runs_app.command("tag")
def runs_tag(
    run_id: RunIdArgument,
    add: Annotated[Optional[List[str]], typer.Option("--add", help="Tag to add (repeatable).")] = None,
    remove: Annotated[Optional[List[str]], typer.Option("--remove", help="Tag to remove (repeatable).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Also rename the run.")] = None,
    db: DbOption = None,
):
    """Add or remove a run's tags (`msda report --where tag=x`, `msda runs list --where tag=x`)."""
    from msda_cli.store.tags import check_tags, join_tags, split_tags

    added, removed = check_tags(add or []), check_tags(remove or [])
    if not (added or removed or name):
        raise MsdaError("give --add TAG, --remove TAG or --name NAME")
    store = _store(db, create=False)
    run = store.get_run(run_id)
    tags = join_tags(set(split_tags(run.tags)) - set(removed) | set(added))
    store.annotate_run(run.id, tags=tags, **({"name": name} if name else {}))
    out.print(f"run {run.id}: tags {tags or '(none)'}", markup=False, highlight=False)


@runs_app.command("note")
def runs_note(
    run_id: RunIdArgument,
    text: Annotated[str, typer.Argument(help="The note (replaces the run's note; '' clears it).")],
    db: DbOption = None,
):
    """Write a note on a run (shown by `msda runs show`)."""
    store = _store(db, create=False)
    run = store.get_run(run_id)
    store.annotate_run(run.id, note=text)
    out.print(f"run {run.id}: note {'set' if text else 'cleared'}", markup=False, highlight=False)


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[List[str], typer.Argument(help="Two or more run ids (or unique prefixes).",
                                                 autocompletion=completion.run_ids)],
    all_keys: Annotated[bool, typer.Option("--all", help="Show every config key, not only those that differ.")] = False,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Runs side by side: the config keys that differ between them, then their final metrics."""
    from msda_cli.render import check_format, print_frame
    from msda_cli.report.compare import compare_runs

    check_format(fmt)
    if len(run_ids) < 2:
        raise MsdaError("runs compare needs two or more run ids")
    store = _store(db, create=False, read_only=True)
    config, metrics = compare_runs(store, [store.get_run(r) for r in run_ids], all_keys=all_keys)
    print_frame(config, fmt, title="Config" if all_keys else "Config keys that differ", console=out)
    print_frame(metrics, fmt, title="Final metrics", console=out)


@subsets_app.command("list")
def subsets_list(fmt: FormatOption = "rich", db: DbOption = None):
    """Every stored subset: its source run, measure, ratio, size and seed (train on one with --subset ID)."""
    import pandas as pd

    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    store = _store(db, read_only=True)
    columns = ["id", "source_run_id", "measure", "ratio", "size", "seed", "params", "created"]
    frame = pd.DataFrame([{"id": s.id, "source_run_id": s.source_run_id, "measure": s.measure, "ratio": s.ratio,
                           "size": s.size, "seed": s.seed, "params": s.params, "created": str(s.created_at)[:19]}
                          for s in store.list_subsets()], columns=columns)
    print_frame(frame, fmt, title=f"Subsets in {store.path}", console=out)


# ----- recipes --------------------------------------------------------------------------
@recipes_app.command("list")
def recipes_list(fmt: FormatOption = "rich"):
    """Every recipe with its data set, architecture, method and the paper table it reproduces."""
    import pandas as pd

    from msda_cli.config import list_recipe_names, read_recipe
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    rows = []
    for name in list_recipe_names():
        raw = read_recipe(name)
        rows.append({"recipe": name, "dataset": raw.get("dataset", ""), "arch": raw.get("arch", ""),
                     "method": raw.get("method", ""), "epochs": raw.get("epochs", ""),
                     "reproduces": raw.get("paper_table", "")})
    print_frame(pd.DataFrame(rows), fmt, title="Recipes", console=out)


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="Recipe name or YAML file.", autocompletion=completion.recipe_names)],
    resolved: Annotated[bool, typer.Option("--resolved", help="Print the recipe with its bases merged in.")] = False,
):
    """A recipe as written, with the bases it extends (and their comments); --resolved merges them."""
    import yaml

    from msda_cli.config import read_recipe, recipe_chain, validate

    raw = read_recipe(name)
    validate(raw, source=f"recipe {name}")
    if resolved:
        _print_yaml(yaml.safe_dump(raw, sort_keys=False))
        return
    for path in recipe_chain(name):
        out.print(f"# ---- {path}", markup=False, highlight=False)
        _print_yaml(path.read_text())


def _print_yaml(text: str) -> None:
    if out.is_terminal:
        from rich.syntax import Syntax

        out.print(Syntax(text, "yaml", background_color="default"))
    else:
        print(text.rstrip("\n"))


# ----- entry point -----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    from msda_cli.hostmem import keep_freed_memory

    keep_freed_memory()  # CPU steps stop paying page faults for every fresh batch-sized tensor
    try:
        # Not standalone: click's usage errors come here and are told in one line, not a box.
        code = app(args=argv, prog_name="msda", standalone_mode=False)
    except typer.TyperException as e:  # the base of typer's (vendored) click exceptions
        if type(e).__name__ == "NoArgsIsHelpError":  # the help is already printed (as typer tests it)
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        words = (sys.argv[1:] if argv is None else argv)[:1]
        command = ctx.command_path if ctx else " ".join(["msda"] + [w for w in words if not w.startswith("-")])
        message = " ".join(e.format_message().split()).rstrip(".")
        err.print(f"msda: error: {message}; see `{command} --help`", markup=False, highlight=False, soft_wrap=True)
        sys.exit(getattr(e, "exit_code", 2))
    except typer.Abort:
        err.print("msda: aborted", markup=False)
        sys.exit(1)
    except MsdaError as e:
        err.print(f"msda: error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except RunFailed as e:
        err.print(f"msda: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("msda: interrupted", markup=False)
        sys.exit(130)
    except Exception as e:  # a full disk wherever a file is written: one line, not a traceback
        full = disk_full(e)
        if full is None:
            raise
        where = f" writing {full.filename}" if full.filename else ""
        err.print(f"msda: error: the disk is full ({full.strerror}{where}); free some space and run the command again",
                  markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code:  # an exit code (typer.Exit, an interrupt); commands return None
        sys.exit(code)
