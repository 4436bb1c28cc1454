"""The live display of `msda train` in this process: one bar per active run, named, i/N, loss, top-1, times."""

from __future__ import annotations

import io

from rich.console import Console

from msda_cli.engine.launch import TrainRequest, train as train_runs
from msda_cli.engine.train_view import RunsProgress, run_labels


def _terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)


def test_the_bar_names_the_run_counts_runs_and_shows_loss_and_top1():
    console = _terminal()
    with RunsProgress(["mixup · digits-cnn · seed 0", "cutmix · digits-cnn · seed 0"], console) as progress:
        task = progress.add_task("run 0a1b2c3d", total=10, completed=0)
        progress.advance(task)
        progress.update(task, loss=0.12345, top1=97.5)
        progress.refresh()
        shown = console.file.getvalue()
        progress.remove_task(task)
        second = progress.add_task("run 4e5f6a7b", total=10, completed=0)
        progress.refresh()
        assert len(progress.tasks) == 1 and progress.tasks[0].id == second  # the first run's bar is gone
    assert "mixup · digits-cnn · seed 0" in shown and "run 1/2" in shown and "1/10" in shown
    assert "loss 0.1235" in shown and "top-1 97.50%" in shown and "0:00:0" in shown
    assert "run 2/2" in console.file.getvalue() and "cutmix · digits-cnn · seed 0" in console.file.getvalue()


def test_fit_drives_the_display_and_leaves_no_finished_bar(db_path):
    from accelerate import Accelerator

    req = TrainRequest(recipe="digits-vanilla", methods=["vanilla", "mixup"], epochs=1,
                       sets=["data.options.image_size=16", "batch_size=256"])
    labels = run_labels(req, db_path, None)
    assert labels == ["vanilla · digits-cnn · seed 0", "mixup · digits-cnn · seed 0"]
    console = _terminal()
    with RunsProgress(labels, console) as progress:
        run_ids = train_runs(req, db_path, Accelerator(cpu=True), progress=progress)
        assert progress.tasks == [] and progress.started == 2
    text = console.file.getvalue()
    assert len(run_ids) == 2 and "run 2/2" in text and "top-1" in text
    assert f"vanilla · digits-cnn · seed 0 (run {run_ids[0]}) epoch 1/1" in text  # the epoch lines stay above the bar
    assert "run 1/2 vanilla · digits-cnn · seed 0 epoch 1/1 " in text  # the bar says the epoch it is in


def test_outside_a_terminal_there_is_no_bar():
    console = Console(file=io.StringIO(), force_terminal=False)
    progress = RunsProgress(["a"], console)
    assert progress.disable
