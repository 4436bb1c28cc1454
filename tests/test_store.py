"""The results store: pragmas, run lifecycle, dead-run detection and bad database paths."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import query
from msda_cli.errors import MsdaError
from msda_cli.metric_names import EVAL, PGD, ROBUST, TOP1
from msda_cli.store import Store
from msda_cli.store.process import start_ticks


def test_pragmas_and_tables(db_path):
    store = Store(db_path)
    with store.engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert con.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert con.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    tables = {t for (t,) in query(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"run", "metric", "subset"} <= tables


def test_metrics_need_an_existing_run(db_path):
    store = Store(db_path)
    with pytest.raises(Exception):
        store.add_metrics("no-such-run", EVAL, [(TOP1, 1.0)])
    assert query(db_path, "SELECT count(*) FROM metric") == [(0,)]


def test_run_lifecycle_and_params(db_path):
    store = Store(db_path)
    run = store.create_run(dataset="digits", arch="digits-cnn", method="mixup", seed=3)
    store.add_metrics(run.id, ROBUST, [(PGD, 12.5, None, {"eps": 8, "steps": 10})])
    store.finish_run(run.id)
    got = store.get_run(run.id)
    assert got.status == "finished" and got.finished_at is not None
    frame = store.final_metrics_frame()
    assert frame.loc[0, "metric"] == PGD and frame.loc[0, "params"] == '{"eps": 8, "steps": 10}'
    assert store.get_run(run.id[:4]).id == run.id  # unique prefix
    for wildcard in ("%", "_", run.id[:2] + "%"):  # SQL LIKE wildcards are plain characters
        with pytest.raises(MsdaError, match="unknown run id"):
            store.get_run(wildcard)
    with pytest.raises(MsdaError, match="unknown run id"):
        store.get_run("zzzz")


def test_a_run_whose_process_died_shows_as_interrupted(db_path):
    store = Store(db_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla")
    store.update_run(run.id, pid=int(dead.stdout))
    alive = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla")
    store.update_run(alive.id, pid=os.getppid(), pid_started=start_ticks(os.getppid()))  # live, not this one
    statuses = {r.id: r.status for r in store.list_runs()}
    assert statuses == {run.id: "interrupted", alive.id: "running"}


def test_a_silent_run_on_another_host_shows_as_interrupted(db_path):
    from datetime import timedelta

    from msda_cli.store.tables import utcnow

    store = Store(db_path)
    run = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla")
    store.update_run(run.id, host="elsewhere", heartbeat_at=utcnow() - timedelta(hours=1))
    fresh = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla")
    store.update_run(fresh.id, host="elsewhere", heartbeat_at=utcnow())
    statuses = {r.id: r.status for r in store.list_runs()}
    assert statuses == {run.id: "interrupted", fresh.id: "running"}


def test_missing_directory_is_a_clear_error(tmp_path, msda):
    r = msda("runs", "list", "--db", str(tmp_path / "nowhere" / "x.db"))
    assert r.code == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nowhere").exists()


def test_corrupt_database_is_a_clear_error(tmp_path, msda):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    before = bad.read_bytes()
    for args in (["runs", "list"], ["train", "--recipe", "digits-vanilla", "--epochs", "1"]):
        r = msda(*args, "--db", str(bad))
        assert r.code == 2 and "corrupt" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert bad.read_bytes() == before


def _as_nobody():
    """A command prefix that drops root, so permission checks apply (root ignores them)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot test an unwritable directory")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_unwritable_directory_is_a_clear_error_for_writers_only():
    # Not under pytest's temporary root: a pytest session starting meanwhile closes it to other users.
    home = Path(tempfile.mkdtemp(prefix="msda-locked-"))
    home.chmod(0o755)
    locked = home / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        env = {**os.environ, "MSDA_DB": str(locked / "msda.db"), "MSDA_RESULTS": str(locked), "HOME": str(home),
               "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(_as_nobody() + [sys.executable, "-m", "msda_cli", "train", "--recipe", "digits-vanilla"],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 2, proc.stderr
        assert "not writable" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not (locked / "msda.db").exists()
        # Listing needs no write access: a missing database lists as empty and is not created.
        proc = subprocess.run(_as_nobody() + [sys.executable, "-m", "msda_cli", "runs", "list", "--format", "csv"],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0 and proc.stdout.startswith("id,recipe"), proc.stderr
        assert not (locked / "msda.db").exists()
    finally:
        locked.chmod(0o755)
        shutil.rmtree(home)

    # A folder this user may not enter: one line too, not a traceback.
    r = subprocess.run(_as_nobody() + [sys.executable, "-m", "msda_cli", "runs", "list", "--db", "/root/x/msda.db"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and "cannot be reached" in r.stderr and len(r.stderr.strip().splitlines()) == 1
