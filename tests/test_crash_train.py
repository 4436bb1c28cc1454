"""`msda train` killed at every moment that matters: the resumed run ends as if nothing happened.

Each case runs a real `msda train` subprocess with `MSDA_FAULT` set to one named point (see
`msda_cli.faults`), so it dies (SIGKILL: no handler runs), is stopped (SIGTERM) or hits a full
disk exactly there. `msda train --resume ID` must then end with every epoch's metrics exactly
once, the final metrics exactly once, the run finished, no `checkpoint.tmp`, and final weights
bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import torch

from conftest import python_cmd, query
from msda_cli import faults
from msda_cli.metric_names import EVAL, IMAGES_PER_S, TRAIN, TRAIN_TIME

EPOCHS = 3
ARGS = ["train", "--recipe", "digits-mixup", "--epochs", str(EPOCHS), "--set", "data.options.image_size=16",
        "--set", "batch_size=128"]
# progress, on stderr: "<time> mixup · digits-cnn · seed 0 (run ID) epoch 1/3: ..." (log.txt: "<time> run ID epoch")
EPOCH_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.+ \(run \w+\)|run \w+) epoch \d+/\d+: ")
# Per-epoch rows that must replay exactly (epoch_time_s is a wall-clock time).
REPLAYED = ("train_loss", "lr", "test_top1")


def run_msda(results, *args, fault: str | None = None, db=None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`msda ARGS` in a subprocess on the results folder `results` (database `db`, default inside it)."""
    env = {**os.environ, "MSDA_RESULTS": str(results), "MSDA_DB": str(db or results / "msda.db"),
           "OMP_NUM_THREADS": "1"}
    env.pop("MSDA_FAULT", None)
    if fault:
        env["MSDA_FAULT"] = fault
    return subprocess.run(python_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)


def outcome(results, db=None) -> dict:
    """What a run left behind: its row, its metric rows counted and valued, its final weights."""
    db = db or results / "msda.db"
    ((run_id, status, epochs_done, checkpoint),) = query(db, "SELECT id, status, epochs_done, checkpoint FROM run")
    rows = query(db, "SELECT kind, name, epoch, value FROM metric WHERE run_id=?", run_id)
    counts: dict = {}
    for kind, name, epoch, _ in rows:
        counts[kind, name, epoch] = counts.get((kind, name, epoch), 0) + 1
    values = {(kind, name, epoch): value for kind, name, epoch, value in rows}
    folder = results / "runs" / run_id
    weights = torch.load(folder / "checkpoint.pt", weights_only=True)["model"] if checkpoint else None
    return {"id": run_id, "status": status, "epochs_done": epochs_done, "checkpoint": checkpoint,
            "counts": counts, "values": values, "weights": weights,
            "leftovers": sorted(p.name for p in folder.glob("*.tmp"))}


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict:
    results = tmp_path_factory.mktemp("straight")
    proc = run_msda(results, *ARGS)
    assert proc.returncode == 0, proc.stderr
    return outcome(results)


def assert_same_as_straight(done: dict, straight: dict) -> None:
    assert (done["status"], done["epochs_done"]) == ("finished", straight["epochs_done"])
    assert done["checkpoint"].endswith(f"runs/{done['id']}/checkpoint.pt")
    assert done["leftovers"] == []
    # Every row exactly once: each epoch's, the final eval and the final timing rows.
    assert set(done["counts"]) == set(straight["counts"]), set(done["counts"]) ^ set(straight["counts"])
    assert all(n == 1 for n in done["counts"].values()), {k: n for k, n in done["counts"].items() if n != 1}
    assert {k for k in done["counts"] if k[2] is None} >= {(TRAIN, TRAIN_TIME, None), (TRAIN, IMAGES_PER_S, None)}
    for key, value in straight["values"].items():
        kind, name, epoch = key
        if kind == EVAL or name in REPLAYED:
            assert done["values"][key] == value, key
    assert done["weights"].keys() == straight["weights"].keys()
    for key, tensor in straight["weights"].items():
        assert torch.equal(done["weights"][key], tensor), key


# Where a kill or a stop is tried: the point, and which of its hits (epochs count from 1).
KILL_POINTS = [
    ("checkpoint.tmp_written@1", "the first checkpoint written, not renamed: resume starts over"),
    ("checkpoint.renamed@1", "the first checkpoint renamed, the row names no checkpoint yet"),
    ("checkpoint.tmp_written@2", "epoch 2's checkpoint written, not renamed"),
    ("checkpoint.renamed@2", "epoch 2's checkpoint renamed, its metrics not stored"),
    ("store.epoch_before_commit@2", "inside epoch 2's metrics transaction"),
    ("train.epoch_recorded@2", "epoch 2 stored, its log line not written"),
    ("checkpoint.renamed@3", "the last checkpoint renamed, its metrics not stored"),
    ("train.before_finish", "every epoch stored, the final metrics not"),
    ("store.finish_before_commit", "inside the transaction of the final metrics and the finish"),
]


def test_every_kill_point_is_declared():
    import msda_cli.engine.train  # noqa: F401  (declares its points and imports the checkpoint's)
    import msda_cli.store  # noqa: F401  (declares the transactions' points)

    for point, _ in KILL_POINTS:
        assert point.split("@")[0] in faults.FAULT_POINTS


@pytest.mark.parametrize("point", [p for p, _ in KILL_POINTS], ids=[p for p, _ in KILL_POINTS])
def test_sigkill_at_a_point_then_resume_is_the_uninterrupted_run(tmp_path, straight, point):
    killed = run_msda(tmp_path, *ARGS, fault=point)
    assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
    listing = run_msda(tmp_path, "runs", "list", "--format", "csv")
    assert listing.returncode == 0 and "interrupted" in listing.stdout  # a dead run never shows running
    run_id = query(tmp_path / "msda.db", "SELECT id FROM run")[0][0]
    resumed = run_msda(tmp_path, "train", "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_as_straight(outcome(tmp_path), straight)


@pytest.mark.parametrize("point", ["checkpoint.tmp_written@2", "checkpoint.renamed@2", "train.before_finish"])
def test_sigterm_at_a_point_marks_interrupted_and_leaves_no_temporary_file(tmp_path, straight, point):
    name, _, nth = point.partition("@")
    stopped = run_msda(tmp_path, *ARGS, fault=f"{name}:term@{nth}" if nth else f"{name}:term")
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    run_id, status = query(tmp_path / "msda.db", "SELECT id, status FROM run")[0]
    assert status == "interrupted"
    assert not list((tmp_path / "runs" / run_id).glob("*.tmp"))  # removed on the way out, not only on resume
    assert run_msda(tmp_path, "train", "--resume", run_id).returncode == 0
    assert_same_as_straight(outcome(tmp_path), straight)


def test_eval_of_a_run_whose_row_lags_its_checkpoint_reads_the_file(tmp_path):
    """Killed after the first checkpoint's rename: the row names no checkpoint, the file is the truth."""
    assert run_msda(tmp_path, *ARGS, fault="checkpoint.renamed@1").returncode == -9
    run_id, checkpoint = query(tmp_path / "msda.db", "SELECT id, checkpoint FROM run")[0]
    assert checkpoint is None and (tmp_path / "runs" / run_id / "checkpoint.pt").is_file()
    r = run_msda(tmp_path, "eval", run_id, "--format", "csv")
    assert r.returncode == 0, r.stderr
    params = query(tmp_path / "msda.db", "SELECT params FROM metric WHERE run_id=? AND kind='eval'", run_id)
    assert params and all('"epoch": 0' in p for (p,) in params)


def test_resume_sets_epochs_done_and_checkpoint_from_the_file(tmp_path, straight):
    """Killed between epoch 2's rename and its transaction: the row says 1 epoch, the file 2."""
    assert run_msda(tmp_path, *ARGS, fault="checkpoint.renamed@2").returncode == -9
    db = tmp_path / "msda.db"
    run_id, epochs_done = query(db, "SELECT id, epochs_done FROM run")[0]
    assert epochs_done == 1
    assert query(db, "SELECT count(*) FROM metric WHERE epoch=1") == [(0,)]
    # Stopped again right after the reconciliation: the row and the rows now agree with the file.
    r = run_msda(tmp_path, "train", "--resume", run_id, fault="train.reconciled")
    assert r.returncode == -9
    assert query(db, "SELECT epochs_done FROM run") == [(2,)]
    # train_loss, lr, test_top1, epoch_time_s, test_top5, test_loss
    assert query(db, "SELECT count(*) FROM metric WHERE epoch=1") == [(6,)]
    assert query(db, "SELECT checkpoint FROM run")[0][0].endswith(f"{run_id}/checkpoint.pt")
    assert run_msda(tmp_path, "train", "--resume", run_id).returncode == 0
    assert_same_as_straight(outcome(tmp_path), straight)


@pytest.mark.parametrize("point", ["checkpoint.tmp_written@2", "store.epoch_before_commit@2"])
def test_a_full_disk_mid_run_is_one_line_and_the_run_resumes(tmp_path, straight, point):
    """Simulated ENOSPC (see test_crash_disk for a real full file system)."""
    name, _, nth = point.partition("@")
    r = run_msda(tmp_path, *ARGS, fault=f"{name}:enospc@{nth}")
    lines = [line for line in r.stderr.strip().splitlines() if not EPOCH_LINE.match(line)]
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    run_id, status = query(tmp_path / "msda.db", "SELECT id, status FROM run")[0]
    folder = tmp_path / "runs" / run_id
    assert f"the disk holding {folder} is full (No space left on device" in lines[0], lines[0]
    assert lines[0].endswith(f"resume it with `msda train --resume {run_id}`")
    assert status == "failed"
    assert not list(folder.glob("*.tmp")) and not (folder / "error.log").exists()
    assert run_msda(tmp_path, "train", "--resume", run_id).returncode == 0
    assert_same_as_straight(outcome(tmp_path), straight)


def test_a_full_database_mid_run_is_one_line_even_when_the_error_cannot_be_stored(msda, db_path, monkeypatch):
    """The store refuses epoch 2's transaction, and then the error handler's own write as well."""
    from msda_cli.store import Store, StoreError

    full = StoreError(f"the disk holding database {db_path} is full (database or disk is full); free some "
                      "space and run the command again (the database is intact)")
    real, real_fail, calls = Store.record_epoch, Store.fail_run, []

    def record_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise full
        return real(self, *args, **kwargs)

    def fail_run(self, *args, **kwargs):
        raise full

    monkeypatch.setattr(Store, "record_epoch", record_epoch)
    monkeypatch.setattr(Store, "fail_run", fail_run)
    r = msda(*ARGS)
    lines = [line for line in r.stderr.strip().splitlines() if not EPOCH_LINE.match(line)]
    assert r.code == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    run_id = query(db_path, "SELECT id FROM run")[0][0]
    assert lines[0].startswith(f"msda: run {run_id} stopped: the disk holding database {db_path} is full")
    assert lines[0].endswith(f"`msda train --resume {run_id}`")
    assert query(db_path, "SELECT status, epochs_done FROM run") == [("running", 1)]  # nothing could be stored
    monkeypatch.setattr(Store, "record_epoch", real)
    monkeypatch.setattr(Store, "fail_run", real_fail)
    assert "interrupted" in msda("runs", "list", "--format", "csv").stdout
    assert msda("train", "--resume", run_id).code == 0
    assert query(db_path, "SELECT status, epochs_done FROM run") == [("finished", EPOCHS)]
