"""msda train: one run per (method, arch, seed), in this process or in parallel ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from msda_cli import completion
from msda_cli.errors import MsdaError
from msda_cli.cli.common import (
    _list, _ints, _store, _has_accelerator, out, err, app, CpuOption, DataDirOption, DbOption, FormatOption, GpusOption,
    GpusPerRunOption, JobsOption,
)
from msda_cli.cli.slurm_options import (AccountOption, CpusOption, LauncherOption, MaxParallelOption, MemOption,
                                        NodesOption, PartitionOption, QosOption, SlurmOptOption, TimeOption,
                                        WaitOption, slurm_options)


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
    grid: Annotated[Optional[List[str]], typer.Option(
        "--grid", help="One run per value, e.g. --grid mixer.alpha=0.1,0.2 (repeatable: the product).")] = None,
    subset: Annotated[Optional[str], typer.Option(help="Train on a stored subset (id from `msda subsample`).")] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue RUN_ID from its last checkpoint.",
                                                  autocompletion=completion.run_ids)] = None,
    data_dir: DataDirOption = None,
    download: Annotated[bool, typer.Option(
        "--download", help="Download the data set into --data-dir (machines with internet).")] = False,
    cpu: CpuOption = False,
    jobs: JobsOption = None,
    gpus: GpusOption = None,
    gpus_per_run: GpusPerRunOption = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", hidden=True, help="New run id.")] = None,
    name: Annotated[Optional[str], typer.Option(help="A name for the run(s), shown by `msda runs list`.")] = None,
    tag: Annotated[Optional[List[str]], typer.Option(
        "--tag", help="Tag the run(s), e.g. --tag baseline (repeatable).")] = None,
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
    """Train one run per (method, arch, seed) of a recipe, storing metrics and checkpoints.

    \b
    Examples:
      msda train --recipe digits-mixup
      msda train --recipe digits-mixup --method vanilla,mixup,cutmix --seeds 0,1
      msda train --recipe cifar100-gmix --arch wrn28-2 --data-dir ~/data --set optim.lr=0.1
      msda train --recipe digits-mixup --method vanilla,mixup --seeds 0,1 --jobs 2
      msda train --recipe iris-mixupe --grid mixer.alpha=0.1,1 --grid mixer.eta=0.001,0.01 --seeds 0,1
      msda train --resume 3f2a1b9c
      msda train --recipe cifar100-hmix --seeds 0,1,2 --launcher slurm --partition gpu --time 4:00:00
    """
    from accelerate import Accelerator

    from msda_cli.engine.launch import TrainRequest, preflight, train as train_runs

    if resume is None and recipe is None:
        raise MsdaError("give --recipe NAME (see `msda recipes list`) or --resume RUN_ID")
    from msda_cli.render import check_format
    from msda_cli.store.tags import check_tags

    check_format(fmt)
    tags = check_tags(tag or [])
    if resume is not None and (recipe or method or arch or seeds or set_ or grid or subset or epochs or run_id or name
                               or tags):
        raise MsdaError("--resume continues a run with its stored config; drop the other options")
    req = None
    if resume is None:
        req = TrainRequest(recipe=recipe, methods=_list(method), archs=_list(arch), seeds=_ints(seeds, "--seeds"),
                           epochs=epochs, sets=list(set_ or []), grid=list(grid or []), data_dir=data_dir,
                           download=download, subset_id=subset, run_id=run_id, name=name, tags=tags)
    slurm = slurm_options(launcher, partition, time, gpus_per_run, cpus_per_run, mem, account, qos, max_parallel,
                          nodes, slurm_opt, wait)
    if slurm is not None:
        if jobs is not None or gpus is not None or cpu:
            raise MsdaError("--jobs, --gpus and --cpu place runs on this machine; Slurm places them itself")
        from msda_cli.engine.slurm import resubmit, run_request

        if resume is not None:
            raise typer.Exit(resubmit(resume, db, slurm, console=err, out=out))
        raise typer.Exit(run_request(req, db, slurm, console=err, out=out))
    if (jobs is not None and jobs != 1) or gpus is not None or gpus_per_run is not None:
        if resume is not None:
            raise MsdaError("--jobs, --gpus and --gpus-per-run start new runs; resume a run with --resume ID alone")
        from msda_cli.engine.parallel import train_in_parallel

        gpu_list = _ints(gpus, "--gpus") if gpus is not None else None
        raise typer.Exit(train_in_parallel(req, db, jobs, gpu_list, gpus_per_run, cpu, console=err, out=out, fmt=fmt))
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
    db_flag = f" --db {store.where}" if db is not None else ""  # a password hidden
    stopped = [r for r in store.list_runs(status="interrupted") if r.pid == os.getpid()]
    for run in stopped:
        planned = json.loads(run.config).get("epochs")
        err.print(f"msda: interrupted: run {run.id} ({run.method}, {run.arch}, seed {run.seed}) stopped after epoch "
                  f"{run.epochs_done} of {planned}; continue it with: msda train --resume {run.id}{db_flag}",
                  markup=False, highlight=False, soft_wrap=True)
    if not stopped:
        err.print("msda: interrupted before a run started; nothing was stored", markup=False)


def _print_runs(store, run_ids, fmt, title="Runs"):
    from msda_cli.render import print_frame
    from msda_cli.store.summary import runs_summary

    frame = runs_summary(store, run_ids).drop(columns=["step", "eta"])  # a running run's columns: blank here
    print_frame(frame, fmt, title=title, console=out)
