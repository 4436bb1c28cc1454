"""The store on a read-only and on a full file system: reading works, writing fails in one true line.

Each test mounts a small tmpfs of its own (root only: the tests run as root in CI).
"""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import query
from msda_cli.metric_names import EVAL, TOP1, TRAIN, TRAIN_LOSS
from msda_cli.store import Store


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def _store_with_runs(db):
    """A finished run with metrics, and a `running` row whose process is dead; then closed (no WAL files)."""
    store = Store(db)
    lease = store.start_run(dataset="digits", arch="digits-cnn", method="mixup", config='{"epochs": 1}')
    store.record_epoch(lease.run_id, 0, TRAIN, [(TRAIN_LOSS, 1.25)], epochs_done=1)
    store.finish_run(lease.run_id, {EVAL: [(TOP1, 93.5)]})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    crashed = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla", config='{"epochs": 1}')
    store.update_run(crashed.id, pid=int(dead.stdout))
    store.engine.dispose()
    return lease.run_id, crashed.id


def _one_line(r, code=2):
    return r.code == code and len(r.stderr.strip().splitlines()) == 1


def test_a_read_only_store_can_be_read(tmpfs, msda):
    db = tmpfs / "msda.db"
    finished, crashed = _store_with_runs(db)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    before = sorted(os.listdir(tmpfs))
    r = msda("runs", "list", "--db", db, "--format", "csv")
    assert r.code == 0, r.stderr
    assert f"{finished},,digits" in r.stdout and "93.5" in r.stdout
    assert f"{crashed},,digits" in r.stdout and ",interrupted," in r.stdout  # judged, not written
    r = msda("runs", "show", finished[:4], "--db", db, "--format", "json")
    assert r.code == 0 and '"top1"' in r.stdout, r.stderr
    r = msda("report", "--rows", "method", "--cols", "arch", "--db", db, "--format", "csv")
    assert r.code == 0 and "93.5" in r.stdout, r.stderr
    for args in (["train", "--recipe", "digits-vanilla", "--epochs", "1"], ["runs", "rm", "--yes", crashed]):
        r = msda(*args, "--db", db)
        assert _one_line(r) and "not writable" in r.stderr, r.stderr
    assert sorted(os.listdir(tmpfs)) == before


def test_a_missing_database_is_read_as_empty_and_not_created(tmp_path, msda):
    db = tmp_path / "none.db"
    assert msda("runs", "list", "--db", db, "--format", "csv").stdout.startswith("id,")
    assert msda("report", "--db", db).code == 0
    r = msda("runs", "show", "0a1b2c3d", "--db", db)
    assert _one_line(r) and "no results database" in r.stderr
    assert not db.exists() and not list(tmp_path.glob("none.db*"))


def _fill(folder):
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_full_disk_at_start_is_named_as_such(tmpfs, msda):
    db = tmpfs / "msda.db"
    finished, _ = _store_with_runs(db)
    _fill(tmpfs)
    r = msda("runs", "list", "--db", db, "--format", "csv")
    assert r.code == 0 and f"{finished},,digits" in r.stdout, r.stderr  # reading needs no space
    r = msda("train", "--recipe", "digits-vanilla", "--epochs", "1", "--db", db)
    assert _one_line(r) and "full" in r.stderr and "corrupt" not in r.stderr, r.stderr
    (tmpfs / "filler").unlink()
    assert query(db, "PRAGMA quick_check") == [("ok",)]
    store = Store(db)  # the space is back: the same database takes writes again
    store.finish_run(store.start_run(dataset="digits", config="{}").run_id)
    assert query(db, "SELECT count(*), sum(status = 'finished') FROM run") == [(3, 2)]
