"""A running run's live progress: the training loop's progress file and `msda runs list`'s step and eta."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from conftest import python_cmd, query
from msda_cli.store.progress import NAME, ProgressFile, read_progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_file_says_epoch_step_and_eta_and_is_written_at_most_every_interval(tmp_path):
    clock = Clock()
    live = ProgressFile(tmp_path, start_epoch=1, epochs=3, steps_per_epoch=4, interval=2.0, clock=clock)
    clock.now = 1.0
    live.tick()  # the first step is shown at once
    assert {k: v for k, v in read_progress(tmp_path).items() if k != "at"} == \
        {"epoch": 1, "epochs": 3, "step": 1, "steps": 4, "eta_s": 7.0}  # 1 s a step, 7 steps left
    clock.now = 2.5
    live.tick()
    assert read_progress(tmp_path)["step"] == 1  # 1.5 s after the last write: not written
    for _ in range(3):
        clock.now += 1.0
        live.tick()
    state = read_progress(tmp_path)
    assert (state["epoch"], state["step"]) == (2, 1) and state["eta_s"] == pytest.approx(3 * 1.1)  # 5.5 s, 5 steps
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failed_write_never_stops_training(tmp_path):
    live = ProgressFile(tmp_path / "gone", 0, 1, 2)
    live.tick()  # the run folder does not exist: nothing written, nothing raised
    assert read_progress(tmp_path / "gone") is None
    (tmp_path / NAME).write_text("{not json")
    assert read_progress(tmp_path) is None


def test_a_run_on_a_full_disk_trains_to_the_end(msda, db_path, monkeypatch):
    monkeypatch.setenv("MSDA_FAULT", "progress.write:enospc")
    r = msda("train", "--recipe", "digits-vanilla", "--set", "data.options.image_size=16", "--epochs", "1")
    assert r.code == 0, r.stderr
    assert query(db_path, "SELECT status FROM run") == [("finished",)]


def _runs_csv(msda) -> pd.DataFrame:
    r = msda("runs", "list", "--format", "csv")
    assert r.code == 0, r.stderr
    return pd.read_csv(io.StringIO(r.stdout), dtype=str, keep_default_na=False)


def test_runs_list_shows_a_paused_run_mid_epoch(isolated_results, db_path, msda):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    trainer = subprocess.Popen(python_cmd("train", "--recipe", "digits-vanilla", "--epochs", "60",
                                          "--set", "data.options.image_size=16", "--set", "batch_size=16"),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, files = time.time() + 240, []
        while time.time() < deadline and trainer.poll() is None and not files:
            files = list((isolated_results / "runs").glob(f"*/{NAME}")) if (isolated_results / "runs").exists() else []
            time.sleep(0.02)
        assert files, "no progress file written"
        trainer.send_signal(signal.SIGSTOP)  # paused mid-epoch: alive, running, no further write
        state = json.loads(files[0].read_text())
        row = _runs_csv(msda).iloc[0]
        (done,) = query(db_path, "SELECT epochs_done FROM run")[0]
        assert row["id"] == files[0].parent.name and row["status"] == "running"
        assert row["epochs"] == f"{done}/60" and done == state["epoch"]  # stopped within ~20 ms of the write
        assert row["step"] == f"{state['step']}/{state['steps']}" and state["steps"] > 1 and row["eta"]
    finally:
        trainer.kill()  # SIGKILL ends a stopped process too
        trainer.wait(timeout=60)


def test_runs_list_shows_only_a_step_of_the_epoch_in_progress(msda, db_path):
    from msda_cli.store import Store

    store = Store(db_path)
    lease = store.start_run(recipe="digits-mixup", method="mixup", epochs_done=2, config=json.dumps({"epochs": 4}))
    try:
        shown = []
        for epoch in (1, 2):  # a file left from the epoch just recorded, then one of the next
            (store.run_dir(lease.run_id)).mkdir(parents=True, exist_ok=True)
            (store.run_dir(lease.run_id) / NAME).write_text(json.dumps(
                {"epoch": epoch, "epochs": 4, "step": 5, "steps": 10, "eta_s": 75.0, "at": time.time()}))
            row = _runs_csv(msda).iloc[0]
            shown.append((row["epochs"], row["step"], row["eta"]))
    finally:
        lease.release()
    assert shown == [("2/4", "", "1m15s"), ("2/4", "5/10", "1m15s")]
