"""Paper tables: msda report prints them, msda reproduce trains and measures what they lack."""

from __future__ import annotations

from typing import List, Optional

import typer
from typing_extensions import Annotated

from msda_cli.checks import check_int
from msda_cli.choices import EPOCHS, SELECT_METRICS, spoken
from msda_cli.completion import choices as offer
from msda_cli.cli.common import (
    _list, _ints, _store, out, err, app, CpuOption, DbOption, FormatOption, GpusOption, GpusPerRunOption, JobsOption,
)
from msda_cli.cli.slurm_options import (AccountOption, CpusOption, LauncherOption, MaxParallelOption, MemOption,
                                        NodesOption, PartitionOption, QosOption, SlurmOptOption, TimeOption,
                                        WaitOption, slurm_options)
from msda_cli.errors import MsdaError


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
    epoch: Annotated[Optional[str], typer.Option(
        help=f"The epoch shown: {spoken(EPOCHS)} (best: by validation top-1, else test top-1; default the "
             "table's).", autocompletion=offer(EPOCHS))] = None,
    select_by: Annotated[Optional[str], typer.Option(
        "--select-by", help=f"Choose each cell's setting by this metric: {spoken(SELECT_METRICS)}.",
        autocompletion=offer(SELECT_METRICS))] = None,
    over: Annotated[Optional[str], typer.Option(
        help="The keys --select-by chooses among, comma-separated, e.g. mixer.alpha,mixer.eta.")] = None,
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
      msda report --table mixupe-4 --select-by val_top1 --over mixer.alpha,mixer.eta --runs
      msda report --table 2 --epoch best
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
                                   show_runs=runs, subsets=store.list_subsets(), epoch=epoch,
                                   epoch_rows=lambda: reporting.epoch_rows(store), select_by=select_by, over=over)
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
    grid: Annotated[Optional[List[str]], typer.Option(
        "--grid", help="Every cell whose method takes the key over these values, e.g. mixer.alpha=0.5,1 "
                       "(repeatable); chosen by --select-by, so the cells need a validation split "
                       "(--set data.val_fraction=0.1) unless it is top1.",
    )] = None,
    select_by: Annotated[Optional[str], typer.Option(
        "--select-by", help=f"The metric --grid's setting is chosen by: {spoken(SELECT_METRICS)} (default the "
                            "table's, else val_top1; top1 chooses on the test set, refused where the paper "
                            "chooses by validation).", autocompletion=offer(SELECT_METRICS))] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also resume runs that failed.")] = False,
    jobs: JobsOption = None,
    gpus: GpusOption = None,
    gpus_per_run: GpusPerRunOption = None,
    cpu: CpuOption = False,
    launcher: LauncherOption = "local",
    partition: PartitionOption = None,
    time: TimeOption = None,
    cpus_per_run: CpusOption = None,
    mem: MemOption = None,
    account: AccountOption = None,
    qos: QosOption = None,
    max_parallel: MaxParallelOption = None,
    nodes: NodesOption = None,
    slurm_opt: SlurmOptOption = None,
    wait: WaitOption = False,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Train what a paper table lacks (skip finished runs, resume interrupted ones), measure, print the table.

    \b
    Examples:
      msda reproduce --table digits --seeds 0,1 --jobs 2
      msda reproduce --table 2 --seeds 0,1,2 --data-dir ~/data --dry-run
      msda reproduce --table 2 --arch resnet56 --rows hmix,gmix --data-dir ~/data --gpus 0,1
      msda reproduce --table dcutmix-5 --data-dir /data --epochs 2     # a smoke test: its own setting
      msda reproduce --table 2 --data-dir /data --launcher slurm --partition gpu --time 8:00:00
    """
    from msda_cli.render import check_format
    from msda_cli.reproduce import Request, reproduce as run_reproduction

    check_format(fmt)
    if epochs is not None:
        check_int("--epochs", epochs, min=1)
    req = Request(table=table, seeds=tuple(_ints(seeds, "--seeds")), archs=tuple(_list(arch)), rows=tuple(_list(rows)),
                  epochs=epochs, sets=tuple(set_ or ()), grid=tuple(grid or ()), data_dir=data_dir,
                  retry_failed=retry_failed, select_by=select_by)
    slurm = slurm_options(launcher, partition, time, gpus_per_run, cpus_per_run, mem, account, qos, max_parallel,
                          nodes, slurm_opt, wait)
    if slurm is not None and (jobs is not None or gpus is not None or cpu):
        raise MsdaError("--jobs, --gpus and --cpu place runs on this machine; Slurm places them itself")
    launcher = dict(jobs=jobs, gpus=_ints(gpus, "--gpus") if gpus is not None else None, gpus_per_run=gpus_per_run,
                    cpu=cpu)
    raise typer.Exit(run_reproduction(req, db, dry_run, launcher, out=out, err=err, slurm=slurm, fmt=fmt))
