"""What a person sees of runs trained in parallel: a live table in a terminal, lines elsewhere.

The launcher (`engine/parallel.py`) hands a list of `RunProgress` snapshots to `update` about once
a second. In a terminal, a rich Live table shows every active run by what it is (method, arch,
seed), its epochs done, the step within the next, train loss, test top-1 and ETA, with the counts of
finished, failed and queued runs; each run that ends leaves one line above it. Outside a terminal (logs, CI)
every finished epoch and every ended run is one line. `print_summary` prints the end table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

ACTIVE = ("starting", "running")
ENDED = ("finished", "failed", "interrupted", "not started")


@dataclass
class RunProgress:
    """One run as the launcher last saw it in the store."""

    label: str  # what the run is, e.g. "mixup · digits-cnn · seed 0"
    run_id: str
    where: str = ""  # "GPU 0,1", "CPU, 1 thread"
    status: str = "queued"  # queued | starting | running | finished | failed | interrupted | not started
    epoch: int = 0  # epochs done
    epochs: int = 0
    loss: float | None = None  # train loss of the last epoch done
    top1: float | None = None  # test top-1 (%) after the last epoch done
    eta_s: float | None = None
    error: str | None = None
    log: str = ""  # the child's console output
    # (epoch, train loss, test top-1) of every epoch finished while the launcher watched, 1-based
    epoch_log: list[tuple[int, float | None, float | None]] = field(default_factory=list)
    step: str = ""  # steps done in the epoch in progress, "12/29" (from the run's progress file)


def counts(runs: list[RunProgress]) -> str:
    n = {s: sum(r.status == s for r in runs) for s in ("finished", "failed", "interrupted", "queued")}
    running = sum(r.status in ACTIVE for r in runs)
    text = f"{n['finished']} finished · {n['failed']} failed · {running} running · {n['queued']} queued"
    return text + (f" · {n['interrupted']} interrupted" if n["interrupted"] else "")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _ended_line(run: RunProgress) -> str:
    text = f"{run.status} {run.label} (run {run.run_id}), {run.epoch}/{run.epochs} epochs"
    if run.status == "finished" and run.top1 is not None:
        text += f", test top-1 {run.top1:.2f}%"
    if run.error:
        text += f": {run.error}"
    return text


class _Events:
    """Remembers what was already shown, so each epoch and each ending is reported once."""

    def __init__(self, console: Console):
        self.console = console
        self._status: dict[str, str] = {}
        self._epochs_shown: dict[str, int] = {}

    def _ended(self, run: RunProgress) -> bool:
        """Whether `run` ended since the last call (a run that never started did not end)."""
        before = self._status.get(run.run_id, run.status)
        self._status[run.run_id] = run.status
        return run.status in ENDED and before not in ENDED and run.status != "not started"

    def _new_epochs(self, run: RunProgress) -> list[tuple[int, float | None, float | None]]:
        shown = self._epochs_shown.get(run.run_id, 0)
        self._epochs_shown[run.run_id] = len(run.epoch_log)
        return run.epoch_log[shown:]

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class LineView(_Events):
    """One line per finished epoch and per ended run (pipes, log files)."""

    def update(self, runs: list[RunProgress]) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for run in runs:
            for epoch, loss, top1 in self._new_epochs(run):
                eta = f" ETA {_clock(run.eta_s)}" if run.status in ACTIVE else ""
                self._print(f"{stamp} {run.label} (run {run.run_id}) epoch {epoch}/{run.epochs}: loss "
                            f"{_num(loss, '.4f')} test top-1 {_num(top1, '.2f')}%{eta} · {counts(runs)}")
            if self._ended(run):
                self._print(f"{stamp} {_ended_line(run)} · {counts(runs)}")

    def close(self) -> None:
        pass


class LiveView(_Events):
    """A rich Live table of the active runs, with the counts; ended runs leave a line above it."""

    def __init__(self, console: Console):
        super().__init__(console)
        self._live = Live(console=console, refresh_per_second=2, transient=True)
        self._live.start()

    def update(self, runs: list[RunProgress]) -> None:
        for run in runs:
            if self._ended(run):
                self._print(_ended_line(run))
        table = Table(header_style="bold", box=None, pad_edge=False)
        for name in ("run", "on", "epochs", "step", "train loss", "test top-1", "ETA", "status"):
            table.add_column(name, justify="left" if name in ("run", "on", "status") else "right")
        for run in runs:
            if run.status in ACTIVE:
                table.add_row(run.label, run.where, f"{run.epoch}/{run.epochs}", run.step or "–",
                              _num(run.loss, ".4f"), _num(run.top1, ".2f"), _clock(run.eta_s), run.status)
        # drawn now, not at the next refresh: the lines just printed and the table tell the same state
        self._live.update(Group(table, Text(counts(runs), style="bold")), refresh=True)

    def close(self) -> None:
        self._live.stop()


def make_view(console: Console) -> LineView | LiveView:
    return LiveView(console) if console.is_terminal else LineView(console)


def print_summary(runs: list[RunProgress], console: Console, fmt: str = "rich", notes: Console | None = None) -> None:
    """The end table (each run and its status) in `fmt` (msda_cli.render's formats), then how to continue the
    interrupted runs: on `console` after a rich table, else on `notes` (stderr), so the table alone is the output."""
    from msda_cli.render import print_frame

    frame = pd.DataFrame([{"id": r.run_id, "run": r.label, "status": r.status, "epochs": f"{r.epoch}/{r.epochs}",
                           "top1": r.top1 if r.status == "finished" else None, "error": r.error or ""}
                          for r in runs])
    if "error" in frame and not frame["error"].astype(bool).any():  # no empty column when every run went well
        frame = frame.drop(columns="error")
    print_frame(frame, fmt, title=f"Runs: {counts(runs)}", console=console)
    notes = console if fmt == "rich" or notes is None else notes
    for run in runs:
        if run.status == "failed" and run.log:
            notes.print(f"output of {run.label}: {run.log}", markup=False, highlight=False, soft_wrap=True)
        if run.status == "interrupted":
            notes.print(f"resume {run.label}: msda train --resume {run.run_id}", markup=False, highlight=False)
