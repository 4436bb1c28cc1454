"""The store on both backends (`db_url`: a SQLite file, a database on a real PostgreSQL server): run
lifecycle, prefix lookup, NaN, dead runs, leases, subsets, schema version and refusals, read-only
opening; and a PostgreSQL URL's bad input (one line, exit 2, no password, nothing written)."""

import os
import subprocess
import time
import sys
from datetime import timedelta

import pytest
from sqlalchemy.exc import DBAPIError

from pg import PASSWORD, query_db
from msda_cli.errors import MsdaError
from msda_cli.metric_names import EVAL, PGD, ROBUST, TOP1, TRAIN, TRAIN_LOSS
from msda_cli.store import LeaseLost, Store, StoreError
from msda_cli.store.schema import SCHEMA_VERSION
from msda_cli.store.tables import utcnow


def _version(db: str) -> int:
    if "://" in db:
        return query_db(db, "SELECT version FROM msda_schema")[0][0]
    return query_db(db, "PRAGMA user_version")[0][0]


def _execute(db: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db if "://" in db else f"sqlite:///{db}")
    with engine.begin() as con:
        for statement in statements:
            con.execute(text(statement))
    engine.dispose()


def test_schema_created_on_first_use_with_its_version(db_url):
    Store(db_url).engine.dispose()
    assert _version(db_url) == SCHEMA_VERSION
    assert query_db(db_url, "SELECT count(*) FROM run") == [(0,)]
    Store(db_url).engine.dispose()  # opening again changes nothing
    assert _version(db_url) == SCHEMA_VERSION


def test_run_lifecycle_prefix_lookup_and_nan(db_url):
    store = Store(db_url)
    run = store.create_run(dataset="digits", arch="digits-cnn", method="mixup", seed=3)
    store.add_metrics(run.id, ROBUST, [(PGD, 12.5, None, {"eps": 8, "steps": 10})])
    store.add_metrics(run.id, EVAL, [(TOP1, float("nan")), ("nll", float("inf"))])
    store.finish_run(run.id)
    got = store.get_run(run.id)
    assert got.status == "finished" and got.finished_at is not None and got.finished_at.tzinfo is not None
    frame = store.final_metrics_frame().set_index("metric")
    assert frame.loc[PGD, "params"] == '{"eps": 8, "steps": 10}' and frame.loc[PGD, "value"] == 12.5
    assert frame.loc[TOP1, "value"] != frame.loc[TOP1, "value"] and frame.loc["nll", "value"] == float("inf")
    assert [m.value for m in store.metrics(run.id, EVAL)][1:] == [float("inf")]
    assert store.get_run(run.id[:4]).id == run.id
    for wildcard in ("%", "_", run.id[:2] + "%"):  # SQL LIKE wildcards are plain characters
        with pytest.raises(MsdaError, match="unknown run id"):
            store.get_run(wildcard)
    other = store.create_run(id=run.id[:2] + "000000" if run.id[2:] != "000000" else run.id[:2] + "111111")
    with pytest.raises(MsdaError, match="2 runs start with it"):
        store.get_run(run.id[:2])
    store.delete_run(other.id)
    with pytest.raises(Exception):  # a metric needs its run (a foreign key on both backends)
        store.add_metrics("ffffffff", EVAL, [(TOP1, 1.0)])


def test_dead_runs_are_interrupted_and_a_reader_writes_nothing(db_url):
    store = Store(db_url)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = store.create_run(dataset="digits")
    store.update_run(gone.id, pid=int(dead.stdout))
    silent = store.create_run(dataset="digits")
    store.update_run(silent.id, host="elsewhere", heartbeat_at=utcnow() - timedelta(hours=1))
    fresh = store.create_run(dataset="digits")
    store.update_run(fresh.id, host="elsewhere", heartbeat_at=utcnow())
    reader = Store(db_url, read_only=True)
    expected = {gone.id: "interrupted", silent.id: "interrupted", fresh.id: "running"}
    assert {r.id: r.status for r in reader.list_runs()} == expected
    assert query_db(db_url, "SELECT count(*) FROM run WHERE status = 'running'") == [(3,)]  # the reader's verdict only
    assert {r.id: r.status for r in store.list_runs()} == expected
    assert query_db(db_url, "SELECT count(*) FROM run WHERE status = 'running'") == [(1,)]


def test_leases_take_over_once_and_a_deleted_run_stops_its_writer(db_url):
    store = Store(db_url)
    lease = store.start_run(dataset="digits")
    store.record_epoch(lease.run_id, 0, TRAIN, [(TRAIN_LOSS, 1.0)], epochs_done=1)
    store.record_epoch(lease.run_id, 0, TRAIN, [(TRAIN_LOSS, 0.5)], epochs_done=1)  # replaced, not doubled
    assert query_db(db_url, "SELECT value FROM metric WHERE run_id = :r", r=lease.run_id) == [(0.5,)]
    with pytest.raises(MsdaError, match="still running"):
        Store(db_url).take_over(lease.run_id)
    store.update_run(lease.run_id, host="elsewhere", heartbeat_at=utcnow() - timedelta(hours=1))
    lease.release()
    first, second = Store(db_url), Store(db_url)
    taken = first.take_over(lease.run_id)
    with pytest.raises(MsdaError, match="still running"):
        second.take_over(lease.run_id)
    Store(db_url).delete_run(taken.run_id)
    with pytest.raises(LeaseLost, match="deleted"):
        first.record_epoch(taken.run_id, 1, TRAIN, [(TRAIN_LOSS, 0.1)], epochs_done=2)
    assert query_db(db_url, "SELECT count(*) FROM metric") == [(0,)]
    taken.release()


def test_subsets_and_delete(db_url, tmp_path):
    store = Store(db_url)
    run = store.create_run(dataset="digits")
    store.add_metrics(run.id, EVAL, [(TOP1, 50.0)])
    (subset,) = store.add_subsets([dict(source_run_id=run.id, measure="cv", ratio=0.25, size=10,
                                        indices_path=str(tmp_path / "i.npy"))])
    assert store.get_subset(subset.id).ratio == 0.25 and [s.id for s in store.list_subsets()] == [subset.id]
    store.delete_run(run.id)
    assert [query_db(db_url, f"SELECT count(*) FROM {t}")[0][0] for t in ("run", "metric", "subset")] == [0, 0, 0]


def test_a_reader_never_writes_nor_creates(db_url, request):
    reader = Store(db_url, read_only=True)
    assert reader.list_runs() == [] and reader.final_metrics_frame().empty
    if "://" in db_url:
        assert query_db(db_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    else:
        assert not os.path.exists(db_url)
    with pytest.raises(StoreError, match="holds no results|no results database"):
        Store(db_url, create=False)
    Store(db_url).create_run(dataset="digits")
    reader = Store(db_url, read_only=True)
    with pytest.raises((DBAPIError, StoreError)):  # PostgreSQL: a read-only transaction; SQLite: mode=ro
        with reader.engine.begin() as con:
            con.exec_driver_sql("UPDATE run SET name = 'x'")
    assert query_db(db_url, "SELECT name FROM run") == [("",)]


@pytest.mark.parametrize("damage, why", [
    ("CREATE TABLE notes (id integer)", "not an msda results database"),
    ("newer", "newer msda"),
])
def test_a_foreign_or_newer_database_is_refused_untouched(db_url, msda, damage, why):
    Store(db_url).engine.dispose()
    if damage == "newer":
        damage = (f"UPDATE msda_schema SET version = {SCHEMA_VERSION + 1}" if "://" in db_url
                  else f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    _execute(db_url, damage)
    for args in (["runs", "list"], ["train", "--recipe", "digits-vanilla", "--epochs", "1"]):
        r = msda(*args)
        assert r.code == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert query_db(db_url, "SELECT count(*) FROM run") == [(0,)]


# ----- a PostgreSQL URL's bad input ----------------------------------------------------------------
def _bad_urls(server):
    return {
        "wrong password": (server.password_url(server.new_database(owner="msda_pw"), "Wr0ng-pw-71aa"),
                           "refused the login"),
        "no such database": (server.url("no_such_db"), "does not exist"),
        "unreachable": ("postgresql+psycopg://u:Wr0ng-pw-71aa@127.0.0.1:1/msda", "cannot reach"),
        "malformed": ("postgresql+psycopg://u:Wr0ng-pw-71aa@127.0.0.1:port/msda", "not a database URL"),
        "unsupported dialect": ("mysql://u:Wr0ng-pw-71aa@127.0.0.1/msda", "not mysql"),
        "missing driver": ("postgresql+pg8000://u:Wr0ng-pw-71aa@127.0.0.1/msda", "driver pg8000 is not supported"),
        "no database named": ("postgresql+psycopg://u:Wr0ng-pw-71aa@127.0.0.1", "names no database"),
    }


@pytest.mark.parametrize("case", ["wrong password", "no such database", "unreachable", "malformed",
                                  "unsupported dialect", "missing driver", "no database named"])
def test_bad_database_urls_are_one_line_without_the_password(pg_server, msda, isolated_results, case):
    url, why = _bad_urls(pg_server)[case]
    for args in (["runs", "list"], ["train", "--recipe", "digits-vanilla", "--epochs", "1"],
                 ["store", "copy", "--from", url, "--to", str(isolated_results / "copy.db")]):
        r = msda(*args, *(["--db", url] if args[0] != "store" else []))
        assert r.code == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Wr0ng-pw-71aa" not in r.stderr + r.stdout
    assert list(isolated_results.iterdir()) == []  # nothing written: no run folder, no database
    pg_server.admin("SELECT 1")
    assert "no_such_db" not in [n for (n,) in query_db(pg_server.url("postgres"), "SELECT datname FROM pg_database")]


def test_the_password_is_never_shown(pg_server, msda, isolated_results):
    url = pg_server.password_url(pg_server.new_database(owner="msda_pw"))
    r = msda("train", "--recipe", "digits-vanilla", "--set", "data.options.image_size=16", "--epochs", "1",
             "--db", url)
    assert r.code == 0, r.stderr
    (run_id, checkpoint), = query_db(url, "SELECT id, checkpoint FROM run")
    assert checkpoint == str(isolated_results / "runs" / run_id / "checkpoint.pt") and os.path.isfile(checkpoint)
    shown = [r.stdout + r.stderr]
    for args in (["runs", "list"], ["runs", "show", run_id], ["subsets", "list"], ["report"]):
        r = msda(*args, "--db", url)
        assert r.code == 0, r.stderr
        shown.append(r.stdout + r.stderr)
    assert "msda_pw:***@127.0.0.1" in shown[1]  # the list's title names the database
    rows = query_db(url, "SELECT * FROM run")
    files = [p.read_text(errors="replace") for p in (isolated_results / "runs").rglob("*") if p.suffix != ".pt"
             if p.is_file()]
    assert not [text for text in shown + [str(rows)] + files if PASSWORD in text]


def test_train_eval_robust_report_rm_on_both_backends(db_url, msda, isolated_results):
    """The command chain against each backend (db_url is also MSDA_DB): the same rows, the same report."""
    r = msda("train", "--recipe", "digits-vanilla", "--method", "vanilla,mixup", "--set", "data.options.image_size=16",
             "--set", "batch_size=128", "--epochs", "1")
    assert r.code == 0, r.stderr
    ids = dict(query_db(db_url, "SELECT method, id FROM run WHERE status = 'finished' AND epochs_done = 1"))
    assert sorted(ids) == ["mixup", "vanilla"]
    assert msda("eval", ids["mixup"][:5]).code == 0  # a prefix
    assert msda("robust", ids["mixup"], "--attack", "fgsm", "--n-examples", "64").code == 0
    kinds = query_db(db_url, "SELECT kind, count(*) FROM metric WHERE run_id = :r AND epoch IS NULL GROUP BY kind "
                     "ORDER BY kind", r=ids["mixup"])
    assert [k for k, _ in kinds] == [EVAL, ROBUST, TRAIN]
    r = msda("report", "--rows", "method", "--cols", "arch", "--metric", TOP1, "--format", "csv")
    table = {row.split(",")[0]: row.split(",") for row in r.stdout.splitlines()[1:]}
    assert r.code == 0 and sorted(table) == ["Mixup", "Vanilla"], r.stdout
    assert [table[m][9] for m in ("Vanilla", "Mixup")] == [ids["vanilla"], ids["mixup"]]
    r = msda("runs", "rm", ids["vanilla"], "--yes")
    assert r.code == 0, r.stderr
    assert query_db(db_url, "SELECT id FROM run") == [(ids["mixup"],)]
    assert query_db(db_url, "SELECT count(*) FROM metric WHERE run_id = :r", r=ids["vanilla"]) == [(0,)]
    assert not (isolated_results / "runs" / ids["vanilla"]).exists()
    assert (isolated_results / "runs" / ids["mixup"] / "checkpoint.pt").is_file()


def test_parallel_runs_get_the_password_outside_their_command_line(pg_server, msda, isolated_results):
    url = pg_server.password_url(pg_server.new_database(owner="msda_pw"))
    r = msda("train", "--recipe", "digits-vanilla", "--seeds", "0,1", "--jobs", "2",
             "--set", "data.options.image_size=16", "--epochs", "1", "--db", url)
    assert r.code == 0, r.stderr
    assert query_db(url, "SELECT count(*) FROM run WHERE status = 'finished'") == [(2,)]
    logs = [p.read_text() for p in (isolated_results / "runs").glob("*/console.log")]
    assert len(logs) == 2 and all("--db postgresql+psycopg://msda_pw@127.0.0.1" in log for log in logs)
    assert PASSWORD not in r.stdout + r.stderr + "".join(logs) + str(query_db(url, "SELECT * FROM run"))


def test_an_older_schema_is_migrated_in_place_and_run_folders_default_to_results(db_url, monkeypatch):
    store = Store(db_url)
    run = store.create_run(dataset="digits")
    store.engine.dispose()
    older = (["ALTER TABLE run DROP COLUMN provenance", "ALTER TABLE run DROP COLUMN slurm_job"]
             + (["UPDATE msda_schema SET version = 2"] if "://" in db_url else ["PRAGMA user_version = 2"]))
    _execute(db_url, *older)
    with pytest.raises(StoreError, match="older msda"):
        Store(db_url, read_only=True)
    assert Store(db_url).get_run(run.id).slurm_job is None and _version(db_url) == SCHEMA_VERSION
    monkeypatch.delenv("MSDA_RESULTS")
    expected = os.path.dirname(os.path.abspath(db_url)) if "://" not in db_url else "results"
    assert str(Store(db_url, read_only=True).results_dir) == expected


def test_the_heartbeat_renews_and_restores_running_and_stops_before_the_final_status(db_url):
    store = Store(db_url)
    lease = store.start_run(dataset="digits")
    beat = "SELECT heartbeat_at, status FROM run WHERE id = :r"
    (first, _), = query_db(db_url, beat, r=lease.run_id)
    _execute(db_url, f"UPDATE run SET status = 'interrupted' WHERE id = '{lease.run_id}'")  # a reader elsewhere
    with lease.beating(every=0.05):
        deadline = time.time() + 10
        while query_db(db_url, beat, r=lease.run_id)[0][0] == first and time.time() < deadline:
            time.sleep(0.02)
        assert query_db(db_url, beat, r=lease.run_id)[0][1] == "running"
        lease.quiet()
        store.fail_run(lease.run_id, "interrupted by signal", status="interrupted")
        time.sleep(0.2)
        assert query_db(db_url, beat, r=lease.run_id)[0][1] == "interrupted"


def test_what_db_names(tmp_path, monkeypatch):
    from pathlib import Path

    from msda_cli.store.url import parse

    assert parse(str(tmp_path / "a.db")).path == tmp_path / "a.db"
    assert parse(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"
    target = parse("postgresql://me:p%40ss@db.cluster:5433/msda")  # the plain dialect means psycopg
    assert target.url.drivername == "postgresql+psycopg" and target.url.password == "p@ss"
    assert target.shown() == "postgresql+psycopg://me:***@db.cluster:5433/msda"
    assert target.for_child() == ("postgresql+psycopg://me@db.cluster:5433/msda", {"PGPASSWORD": "p@ss"})
    socket = parse("postgresql+psycopg://me@/msda?host=/run/postgresql")
    assert socket.url.query == {"host": "/run/postgresql"} and socket.for_child()[1] == {}
    monkeypatch.setenv("MSDA_DB", "postgresql+psycopg://me@h/msda")
    assert parse(None).url.database == "msda" and parse(None).path is None
    monkeypatch.delenv("MSDA_DB")
    assert parse(None).path == Path(os.environ["MSDA_RESULTS"]) / "msda.db"
