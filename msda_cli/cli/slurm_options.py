"""The `--launcher slurm` options that msda train and msda reproduce share, and their checks."""

from __future__ import annotations

from typing import List, Optional

import typer
from typing_extensions import Annotated

from msda_cli.checks import check_choice
from msda_cli.choices import LAUNCHERS, spoken
from msda_cli.completion import choices as offer
from msda_cli.errors import MsdaError

_SLURM = "Slurm (--launcher slurm): "

LauncherOption = Annotated[str, typer.Option(
    help=f"Where the runs train: {spoken(LAUNCHERS)} (local: this machine; slurm: one job array, one task per run).",
    autocompletion=offer(LAUNCHERS))]
PartitionOption = Annotated[Optional[str], typer.Option(help=_SLURM + "the partition.")]
TimeOption = Annotated[Optional[str], typer.Option(
    "--time", help=_SLURM + "time limit per task (MM, HH:MM:SS, D-HH:MM; default 60 minutes); requeued and resumed "
    "when it runs out.")]
CpusOption = Annotated[Optional[int], typer.Option("--cpus-per-run", help=_SLURM + "CPUs per run (default 1).")]
MemOption = Annotated[Optional[str], typer.Option(help=_SLURM + "memory per node, e.g. 16G.")]
AccountOption = Annotated[Optional[str], typer.Option(help=_SLURM + "the account to charge.")]
QosOption = Annotated[Optional[str], typer.Option(help=_SLURM + "the quality of service.")]
MaxParallelOption = Annotated[Optional[int], typer.Option(
    "--max-parallel", help=_SLURM + "tasks of the array running at once.")]
NodesOption = Annotated[Optional[int], typer.Option(help=_SLURM + "nodes per run (each with --gpus-per-run GPUs).")]
SlurmOptOption = Annotated[Optional[List[str]], typer.Option(
    "--slurm-opt", help=_SLURM + "any submitit SlurmExecutor parameter, e.g. constraint=a100 (repeatable).")]
WaitOption = Annotated[bool, typer.Option(
    "--wait", help=_SLURM + "wait for the runs, with the live view of local parallel runs.")]


def slurm_options(launcher: str, partition, time, gpus_per_run, cpus_per_run, mem, account, qos, max_parallel, nodes,
                  slurm_opt, wait: bool):
    """The SlurmOptions of `--launcher slurm`, or None for a local launch (MsdaError if a Slurm option was given)."""
    from msda_cli.engine.slurm import SlurmOptions

    check_choice("--launcher", launcher, LAUNCHERS)
    given = {"--partition": partition, "--time": time, "--cpus-per-run": cpus_per_run, "--mem": mem,
             "--account": account, "--qos": qos, "--max-parallel": max_parallel, "--nodes": nodes,
             "--slurm-opt": slurm_opt or None, "--wait": wait or None}
    if launcher == "local":
        named = [flag for flag, value in given.items() if value is not None]
        if named:
            raise MsdaError(f"{', '.join(named)}: Slurm options, given without --launcher slurm")
        return None
    return SlurmOptions(partition=partition, time="60" if time is None else time, gpus_per_run=gpus_per_run,
                        cpus_per_run=1 if cpus_per_run is None else cpus_per_run, mem=mem, account=account, qos=qos,
                        max_parallel=max_parallel, nodes=1 if nodes is None else nodes, extra=list(slurm_opt or []),
                        wait=wait)
