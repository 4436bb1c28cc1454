"""The store under concurrency, on both backends: many writers and readers at once, many first opens of a new
database."""

import multiprocessing as mp
import os
import time
import traceback

from pg import query_db
from msda_cli.metric_names import EVAL, LR, TOP1, TOP5, TRAIN, TRAIN_LOSS
from msda_cli.store import Store
from msda_cli.store.schema import SCHEMA_VERSION

WRITERS, EPOCHS, READERS = 8, 40, 2
# Before opening took the write lock to create the tables, 6 to 13 of 16 such writers failed.
FIRST_READERS, FIRST_WRITERS = 24, 16

# Forked children start at once (no interpreter start-up to spread them out) and share nothing
# with the parent but the database path.
_fork = mp.get_context("fork")


def _report(errors, fn, *args):
    t0 = time.monotonic()
    try:
        fn(*args)
    except BaseException:
        errors.put(f"after {time.monotonic() - t0:.1f} s: {traceback.format_exc(limit=3)}")
        errors.close()
        errors.join_thread()  # flushed before the hard exit
        os._exit(1)
    os._exit(0)


def _writer(db, start):
    start.wait()
    store = Store(db)
    lease = store.start_run(dataset="digits", arch="digits-cnn", method="vanilla", config="{}")
    for epoch in range(EPOCHS):
        store.record_epoch(lease.run_id, epoch, TRAIN, [(TRAIN_LOSS, float(epoch)), (LR, 0.1)], epochs_done=epoch + 1)
        store.add_metrics(lease.run_id, EVAL, [(TOP1, float(epoch))])
    store.finish_run(lease.run_id, {EVAL: [(TOP5, 1.0)]})


def _reader(db, start, stop):
    start.wait()
    while not stop.is_set():
        store = Store(db, read_only=True)
        store.list_runs()
        store.final_metrics_frame()
        store.engine.dispose()


def _first_open(db, start, write):
    start.wait()
    store = Store(db, read_only=not write)
    if write:
        store.start_run(dataset="digits", arch="digits-cnn", method="vanilla", config="{}")
    store.list_runs()


def _start_together(procs, start):
    for p in procs:
        p.start()
    start.set()


def _finish(procs, errors, timeout=240):
    for p in procs:
        p.join(timeout)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, f"{len(failures)} of {len(procs)} processes failed; first:\n{failures[0]}"
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_concurrent_writers_and_readers_lose_nothing(db_url):
    db_path = db_url  # a SQLite file or a PostgreSQL database (tests/pg.py)
    Store(db_path).engine.dispose()  # the database exists; the writers race on rows, not on creation
    errors, start, stop = _fork.Queue(), _fork.Event(), _fork.Event()
    writers = [_fork.Process(target=_report, args=(errors, _writer, db_path, start)) for _ in range(WRITERS)]
    readers = [_fork.Process(target=_report, args=(errors, _reader, db_path, start, stop)) for _ in range(READERS)]
    _start_together(readers + writers, start)
    try:
        _finish(writers, errors)
    finally:
        stop.set()
    _finish(readers, errors, timeout=60)
    assert query_db(db_path, "SELECT count(*), sum(CASE WHEN status = 'finished' THEN 1 ELSE 0 END) FROM run") == [
        (WRITERS, WRITERS)]
    assert query_db(db_path, "SELECT count(*) FROM metric") == [(WRITERS * (EPOCHS * 3 + 1),)]
    assert query_db(db_path, "SELECT count(DISTINCT run_id || '/' || epoch) FROM metric WHERE name = :name",
                    name=TRAIN_LOSS) == [(WRITERS * EPOCHS,)]


def test_concurrent_first_opens_of_a_new_database(db_url):
    db_path = db_url
    errors, start = _fork.Queue(), _fork.Event()
    procs = [_fork.Process(target=_report, args=(errors, _first_open, db_path, start, i < FIRST_WRITERS))
             for i in range(FIRST_READERS + FIRST_WRITERS)]
    _start_together(procs, start)
    _finish(procs, errors)
    assert query_db(db_path, "SELECT count(*) FROM run") == [(FIRST_WRITERS,)]
    version = "SELECT version FROM msda_schema" if "://" in db_path else "PRAGMA user_version"
    assert query_db(db_path, version) == [(SCHEMA_VERSION,)]
