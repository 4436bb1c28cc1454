"""A real full disk mid-run (a size-limited tmpfs, so root is needed): one line that names the full
disk, exit status 1, nothing corrupted, and the run resumes to the uninterrupted result once space
is freed. Without root the simulated ENOSPC cases of test_crash_train cover the same code.
"""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from conftest import query
from test_crash_train import ARGS, EPOCH_LINE, assert_same_as_straight, outcome, run_msda, straight  # noqa: F401

PAGE = 4096


def _mount(path: Path, size: int, remount: bool = False) -> bool:
    options = f"size={-(-size // PAGE) * PAGE}"
    cmd = (["mount", "-o", f"remount,{options}", str(path)] if remount
           else ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)])
    return subprocess.run(cmd, capture_output=True).returncode == 0


@contextmanager
def tmpfs(path: Path, size: int):
    path.mkdir(parents=True, exist_ok=True)
    if not _mount(path, size):
        pytest.skip("mounting a size-limited tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _the_error_line(proc) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if not EPOCH_LINE.match(line)]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def test_run_folders_on_a_full_disk(tmp_path, straight):
    """The run folders' disk holds a checkpoint and a half: epoch 2's checkpoint cannot be written."""
    ckpt = Path(straight["checkpoint"]).stat().st_size
    disk, db = tmp_path / "disk", tmp_path / "msda.db"
    with tmpfs(disk, ckpt * 3 // 2 + 4 * PAGE):
        line = _the_error_line(run_msda(disk, *ARGS, db=db))
        run_id, status, epochs_done, error = query(db, "SELECT id, status, epochs_done, error FROM run")[0]
        folder = disk / "runs" / run_id
        assert f"run {run_id} stopped: the disk holding {folder} is full (No space left on device)" in line
        assert line.endswith(f"`msda train --resume {run_id}`")
        assert (status, epochs_done) == ("failed", 1) and "is full" in error
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "config.json", "log.txt"]
        assert torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] == 0  # the last good one, whole
        assert _mount(disk, ckpt * 4, remount=True)  # space freed
        assert run_msda(disk, "train", "--resume", run_id, db=db).returncode == 0
        done = outcome(disk, db=db)
    assert_same_as_straight(done, straight)


def test_database_and_run_folders_on_one_full_disk(tmp_path, straight):
    """Everything on one small disk: whichever write finds it full (a checkpoint, a transaction, the
    error handler's own write), the command says so in one line and the database stays intact."""
    ckpt = Path(straight["checkpoint"]).stat().st_size
    disk = tmp_path / "disk"
    with tmpfs(disk, ckpt * 3 // 2 + 40 * PAGE):
        line = _the_error_line(run_msda(disk, *ARGS))
        assert " is full (" in line and "--resume" in line
        con = sqlite3.connect(disk / "msda.db")
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        con.close()
        run_id = query(disk / "msda.db", "SELECT id FROM run")[0][0]
        assert not list((disk / "runs" / run_id).glob("*.tmp"))
        listing = run_msda(disk, "runs", "list", "--format", "csv")
        assert listing.returncode == 0 and "running" not in listing.stdout  # failed, or interrupted if unwritable
        assert _mount(disk, ckpt * 8, remount=True)
        assert run_msda(disk, "train", "--resume", run_id).returncode == 0
        done = outcome(disk)
    assert_same_as_straight(done, straight)
