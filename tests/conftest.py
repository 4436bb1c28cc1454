"""Shared fixtures: an isolated results directory and an in-process `msda` runner."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from pg import db_url, pg_server, pg_url  # noqa: F401  (a real PostgreSQL server; the store on both backends)
from slurm import slurm_cluster  # noqa: F401  (a real one-node Slurm cluster for --launcher slurm)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def isolated_results(tmp_path, monkeypatch):
    """Every test gets its own results directory and database."""
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("MSDA_RESULTS", str(results))
    monkeypatch.setenv("MSDA_DB", str(results / "msda.db"))
    monkeypatch.setenv("COLUMNS", "200")
    return results


@pytest.fixture
def db_path(isolated_results) -> Path:
    return isolated_results / "msda.db"


@pytest.fixture
def msda(capsys):
    """Run `msda ARGS...` in this process; returns exit code, stdout and stderr."""
    from msda_cli.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def train_shared_runs(results: Path, *commands: list[str]) -> Path:
    """Run `msda train ARGS` for each command in `results` (for module-scoped fixtures that share
    trained runs between tests); returns the database path. Fails the test on a non-zero exit."""
    from msda_cli.cli import main

    saved = {k: os.environ.get(k) for k in ("MSDA_RESULTS", "MSDA_DB")}
    os.environ["MSDA_RESULTS"], os.environ["MSDA_DB"] = str(results), str(results / "msda.db")
    try:
        for args in commands:
            try:
                main(["train", *map(str, args)])
            except SystemExit as e:
                assert e.code in (0, None), f"msda train {' '.join(map(str, args))} exited {e.code}"
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return results / "msda.db"


def query(db: Path, sql: str, *params):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "msda_cli", *args]


def interrupt_in_epoch(monkeypatch, msda, args, epoch: int = 2) -> None:
    """`msda ARGS` stopped by a Ctrl-C as training epoch `epoch` (1-based) starts: it exits 130."""
    import msda_cli.engine.train as train_mod

    real, calls = train_mod.train_one_epoch, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "train_one_epoch", interrupted)
    try:
        assert msda(*args).code == 130
    finally:
        monkeypatch.setattr(train_mod, "train_one_epoch", real)


def assert_resume_matches_straight(msda, db_path: Path, epochs: int) -> None:
    """The store holds a straight run, then one interrupted after epoch 1: resumed, it ends with the straight
    run's per-epoch losses and final weights, bit for bit."""
    from msda_cli.metric_names import TRAIN_LOSS

    (straight, resumed) = [r for (r,) in query(db_path, "SELECT id FROM run ORDER BY created_at")]
    assert query(db_path, "SELECT status, epochs_done FROM run WHERE id=?", resumed) == [("interrupted", 1)]
    assert msda("train", "--resume", resumed).code == 0
    losses = [[v for (v,) in query(db_path, "SELECT value FROM metric WHERE run_id=? AND name=? ORDER BY epoch",
                                   r, TRAIN_LOSS)] for r in (straight, resumed)]
    assert len(losses[0]) == epochs and losses[0] == losses[1]
    weights = [torch.load(query(db_path, "SELECT checkpoint FROM run WHERE id=?", r)[0][0], weights_only=True)["model"]
               for r in (straight, resumed)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def wait_for_first_epoch(trainer, db_path: Path, timeout: float = 240) -> str:
    """The id of the first run a `msda train` subprocess has stored an epoch of (the store may not exist
    yet, or be mid-write, while it starts)."""
    deadline, rows = time.time() + timeout, []
    while time.time() < deadline and trainer.poll() is None and not rows:
        try:
            rows = query(db_path, "SELECT id FROM run WHERE epochs_done >= 1") if db_path.exists() else []
        except sqlite3.OperationalError:
            rows = []
        time.sleep(0.05)
    assert rows, "the trainer never finished an epoch"
    return rows[0][0]
