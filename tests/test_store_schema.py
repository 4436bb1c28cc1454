"""Opening a database that is not at msda's schema: another program's file, an older or a newer msda."""

import os
import socket
import sqlite3
from pathlib import Path

import pytest

from conftest import query
from msda_cli.errors import MsdaError
from msda_cli.store import Store
from msda_cli.store.schema import SCHEMA_VERSION

# What msda wrote before the schema had a version (PRAGMA user_version 0): no run leases.
SCHEMA_0 = """
CREATE TABLE run (id VARCHAR NOT NULL, name VARCHAR NOT NULL, recipe VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
    arch VARCHAR NOT NULL, method VARCHAR NOT NULL, seed INTEGER NOT NULL, config VARCHAR NOT NULL,
    status VARCHAR NOT NULL, epochs_done INTEGER NOT NULL, created_at DATETIME NOT NULL, finished_at DATETIME,
    heartbeat_at DATETIME, pid INTEGER, host VARCHAR NOT NULL, error VARCHAR, checkpoint VARCHAR,
    subset_id VARCHAR, msda_version VARCHAR NOT NULL, PRIMARY KEY (id));
CREATE INDEX ix_run_status ON run (status);
CREATE TABLE metric (id INTEGER NOT NULL, run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, name VARCHAR NOT NULL,
    value FLOAT NOT NULL, epoch INTEGER, params VARCHAR NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES run (id) ON DELETE CASCADE);
CREATE TABLE subset (id VARCHAR NOT NULL, source_run_id VARCHAR NOT NULL, measure VARCHAR NOT NULL,
    ratio FLOAT NOT NULL, seed INTEGER NOT NULL, size INTEGER NOT NULL, indices_path VARCHAR NOT NULL,
    params VARCHAR NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(source_run_id) REFERENCES run (id) ON DELETE CASCADE);
INSERT INTO run VALUES ('0a1b2c3d', 'digits-mixup/mixup/digits-cnn/s0', 'digits-mixup', 'digits', 'digits-cnn',
    'mixup', 0, '{"epochs": 2}', 'finished', 2, '2025-01-02 03:04:05.000000', '2025-01-02 03:05:05.000000',
    '2025-01-02 03:05:05.000000', 4242, 'oldhost', NULL, NULL, NULL, '0.9.0');
INSERT INTO metric VALUES (1, '0a1b2c3d', 'eval', 'top1', 91.5, NULL, '{}', '2025-01-02 03:05:05.000000');
"""


def _sqlite(path: Path, script: str) -> Path:
    con = sqlite3.connect(path)
    con.executescript(script)
    con.close()
    return path


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _one_line(r):
    return r.code == 2 and len(r.stderr.strip().splitlines()) == 1


COMMANDS = (["runs", "list"], ["runs", "show", "0a1b2c3d"], ["report"], ["runs", "rm", "0a1b2c3d"],
            ["train", "--recipe", "digits-vanilla", "--epochs", "1"])


@pytest.mark.parametrize("script, why", [
    ("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO users VALUES (1, 'a@b.c');",
     "not an msda results database"),
    ("CREATE TABLE run (id TEXT PRIMARY KEY, started REAL); INSERT INTO run VALUES ('x', 1.0);",
     "does not have msda's columns"),
    (SCHEMA_0 + "CREATE TABLE notes (t TEXT);", "not an msda results database"),
    (SCHEMA_0 + f"PRAGMA user_version = {SCHEMA_VERSION + 1};", "newer msda"),
])
def test_a_database_msda_cannot_use_is_refused_and_left_untouched(tmp_path, msda, script, why):
    folder = tmp_path / "other"
    folder.mkdir()
    db = _sqlite(folder / "app.db", script)
    before = _snapshot(folder)
    for args in COMMANDS:
        r = msda(*args, "--db", db)
        assert _one_line(r) and why in r.stderr, (args, r.stderr)
    assert _snapshot(folder) == before  # not a byte, not a -wal or -shm file


def test_an_older_msda_database_is_migrated_in_place(tmp_path, msda):
    db = _sqlite(tmp_path / "old.db", SCHEMA_0)
    r = msda("runs", "list", "--db", db, "--format", "csv")
    assert _one_line(r) and "older msda" in r.stderr, r.stderr  # a reader never writes, so it cannot migrate
    store = Store(db)
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    columns = {name for (name,) in query(db, "SELECT name FROM pragma_table_info('run')")}
    assert {"lease", "pid_started"} <= columns
    run = store.get_run("0a1b")
    assert (run.status, run.epochs_done, run.lease, run.pid_started) == ("finished", 2, None, None)
    assert [(m.name, m.value) for m in store.metrics(run.id)] == [("top1", 91.5)]
    r = msda("runs", "list", "--db", db, "--format", "csv")
    assert r.code == 0 and "0a1b2c3d,digits-mixup" in r.stdout and "91.5" in r.stdout, r.stderr
    Store(db)  # opening it again changes nothing
    assert query(db, "SELECT count(*) FROM metric") == [(1,)]


def test_a_migrated_running_row_without_a_start_time_is_judged_by_its_pid(tmp_path):
    here = socket.gethostname()
    db = _sqlite(tmp_path / "old.db", SCHEMA_0.replace("'finished'", "'running'").replace("'oldhost'", repr(here))
                 .replace("4242", str(os.getppid())))  # a live process: the row predates start times
    store = Store(db)
    assert store.get_run("0a1b2c3d").status == "running"
    with pytest.raises(MsdaError, match="still running"):
        store.take_over("0a1b2c3d")


# msda's schema 1: run leases, before runs carried tags and a note.
SCHEMA_1 = (SCHEMA_0.replace("msda_version VARCHAR NOT NULL, PRIMARY KEY (id));",
                             "msda_version VARCHAR NOT NULL, pid_started INTEGER, lease VARCHAR, PRIMARY KEY (id));")
            .replace("'0.9.0');", "'0.9.0', NULL, NULL);") + "PRAGMA user_version = 1;")


def test_a_version_1_database_gains_tags_and_a_note(tmp_path, msda):
    db = _sqlite(tmp_path / "v1.db", SCHEMA_1)
    assert query(db, "PRAGMA user_version") == [(1,)]
    r = msda("runs", "list", "--db", db, "--format", "csv")
    assert _one_line(r) and "older msda" in r.stderr, r.stderr
    Store(db)
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)] and SCHEMA_VERSION == 3
    columns = {name for (name,) in query(db, "SELECT name FROM pragma_table_info('run')")}
    assert {"tags", "note", "lease", "provenance", "slurm_job"} <= columns
    r = msda("runs", "tag", "0a1b", "--add", "baseline", "--db", db)
    assert r.code == 0, r.stderr
    r = msda("runs", "list", "--db", db, "--where", "tag=baseline", "--format", "csv")
    assert r.code == 0 and "0a1b2c3d" in r.stdout and "baseline" in r.stdout, r.stderr
    r = msda("runs", "list", "--db", db, "--where", "tag!=baseline", "--format", "csv")
    assert r.code == 0 and "0a1b2c3d" not in r.stdout
