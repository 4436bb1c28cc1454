"""What a person sees of runs trained one after another in this process (`msda train`, `--jobs 1`).

One bar at a time: run i/N, the run by what it is (method · arch · seed, as the `--jobs` view names
it), the epoch in progress, its steps, the last epoch's train loss and test top-1, elapsed time and
ETA. A run's bar goes when the run ends (its epochs stay as lines above), so finished bars do not pile
up. `fit` drives it as it would a rich Progress: `add_task(epochs=)`, `advance`, `update(loss=, top1=)`,
`remove_task`, `console`, and `name` (the run's label) for its epoch lines.
Outside a terminal the bar is off and only the per-epoch lines are printed.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

from msda_cli.engine.parallel import run_label
from msda_cli.grid import grid_keys, point_label
from msda_cli.engine.parallel_view import _num


class _EpochColumn(ProgressColumn):
    """`epoch 2/4`: the epoch the bar's steps are in (fit gives the task its `epochs`)."""

    def render(self, task) -> Text:
        epochs = task.fields.get("epochs")
        if not epochs or not task.total:
            return Text("")
        return Text(f"epoch {min(int(task.completed // (task.total / epochs)) + 1, epochs)}/{epochs}")


class RunsProgress(Progress):
    """A rich Progress that knows the runs it will be shown, in the order `fit` starts them."""

    def __init__(self, labels: list[str], console: Console):
        super().__init__(TextColumn("run {task.fields[index]}"), TextColumn("[bold]{task.fields[label]}"),
                         _EpochColumn(), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss_text]}"),
                         TextColumn("top-1 {task.fields[top1_text]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                         console=console, transient=True, disable=not console.is_terminal)
        self.labels = labels
        self.started = 0

    def add_task(self, description: str, **kwargs):
        label = self.labels[self.started] if self.started < len(self.labels) else description
        self.started += 1
        return super().add_task(description, label=label, index=f"{self.started}/{len(self.labels)}",
                                loss_text="–", top1_text="–", **kwargs)

    def name(self, task_id) -> str:
        """What the task's run is (its label)."""
        return next(task.fields["label"] for task in self.tasks if task.id == task_id)

    def update(self, task_id, *, loss: float | None = None, top1: float | None = None, **kwargs):
        if loss is not None:
            kwargs["loss_text"] = _num(loss, ".4f")
        if top1 is not None:
            kwargs["top1_text"] = _num(top1, ".2f") + "%"
        super().update(task_id, **kwargs)


def labels_of(configs, grid=()) -> list[str]:
    """What each run is, as the `--jobs` view names it (with its point of the request's `--grid`)."""
    keys = grid_keys(grid)
    return [run_label(cfg.method, cfg.arch, cfg.seed, point_label(json.loads(cfg.model_dump_json()), keys))
            for cfg in configs]


def run_labels(req, db, resume_id: str | None) -> list[str]:
    """The labels of the runs `msda train` is about to train (the resumed one, or every expanded one)."""
    if resume_id is not None:
        from msda_cli.store import Store

        run = Store(db, read_only=True).get_run(resume_id)
        return [run_label(run.method, run.arch, run.seed)]
    from msda_cli.engine.launch import resolve_configs

    return labels_of(resolve_configs(req), req.grid)
