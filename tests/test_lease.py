"""Run leases: the heartbeat thread, who may resume a run, writes of a process that lost its run."""

import json
import sqlite3
import time
from datetime import timedelta

import pytest

from conftest import query
from msda_cli.errors import MsdaError
from msda_cli.metric_names import EVAL, LR, TOP1, TRAIN, TRAIN_LOSS
from msda_cli.store import LeaseLost, Store
from msda_cli.store.lease import STALE_AFTER, owner_alive
from msda_cli.store.tables import utcnow


def _run(store: Store, **fields):
    return store.start_run(dataset="digits", arch="digits-cnn", method="vanilla", config="{}", **fields)


def _write(db_path, sql, *params):
    con = sqlite3.connect(db_path)
    with con:
        con.execute(sql, params)
    con.close()


def _beat(db_path, run_id):
    return query(db_path, "SELECT heartbeat_at FROM run WHERE id=?", run_id)[0][0]


def test_the_heartbeat_thread_renews_without_steps_and_restores_running(db_path):
    store = Store(db_path)
    lease = _run(store)
    first = _beat(db_path, lease.run_id)
    # A reader on another host saw the heartbeat stale and showed the run as interrupted.
    _write(db_path, "UPDATE run SET status='interrupted' WHERE id=?", lease.run_id)
    with lease.beating(every=0.05):
        deadline = time.time() + 10
        while _beat(db_path, lease.run_id) == first and time.time() < deadline:
            time.sleep(0.02)  # the main thread does nothing at all: a long epoch or evaluation
        assert _beat(db_path, lease.run_id) > first
        assert query(db_path, "SELECT status FROM run WHERE id=?", lease.run_id) == [("running",)]


def test_no_beat_lands_after_a_stopped_run_is_marked_interrupted(db_path):
    store = Store(db_path)
    for _ in range(20):
        lease = _run(store).beating(every=0.0005)  # a beat is under way most of the time
        time.sleep(0.01)
        lease.quiet()
        store.fail_run(lease.run_id, "interrupted by signal", status="interrupted")
        time.sleep(0.01)
        assert query(db_path, "SELECT status FROM run WHERE id=?", lease.run_id) == [("interrupted",)]
        lease.release()


def test_a_run_of_this_process_that_it_no_longer_holds_is_dead(db_path):
    store = Store(db_path)
    lease = _run(store)
    assert store.get_run(lease.run_id).status == "running"
    lease.release()  # e.g. its training failed and the failure could not be stored
    assert store.get_run(lease.run_id).status == "interrupted"


def test_resume_is_refused_while_another_host_beats_and_allowed_once_stale(db_path, msda):
    store = Store(db_path)
    run = store.create_run(dataset="digits", arch="digits-cnn", method="vanilla", config="{}")
    store.update_run(run.id, host="elsewhere", heartbeat_at=utcnow() - timedelta(seconds=30))
    r = msda("train", "--resume", run.id)
    assert r.code == 2 and "still running" in r.stderr and "elsewhere" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert query(db_path, "SELECT host, status FROM run") == [("elsewhere", "running")]
    store.update_run(run.id, heartbeat_at=utcnow() - STALE_AFTER - timedelta(seconds=1))
    lease = store.take_over(run.id)
    row = store.get_run(run.id)
    assert row.lease == lease.token and row.status == "running" and owner_alive(row)


def test_a_lost_lease_writes_nothing(db_path):
    store, other = Store(db_path), Store(db_path)
    lease = _run(store)
    store.record_epoch(lease.run_id, 0, TRAIN, [(TRAIN_LOSS, 1.0)], epochs_done=1)
    # Another process took the run over (its owner looked dead from there).
    _write(db_path, "UPDATE run SET lease='someone-else', status='interrupted' WHERE id=?", lease.run_id)
    other.take_over(lease.run_id)
    with pytest.raises(LeaseLost, match="taken over"):
        store.record_epoch(lease.run_id, 1, TRAIN, [(TRAIN_LOSS, 0.5)], epochs_done=2)
    assert lease.lost.is_set()
    assert not store.fail_run(lease.run_id, "boom")
    assert query(db_path, "SELECT epochs_done, error FROM run") == [(1, None)]
    assert query(db_path, "SELECT epoch, value FROM metric") == [(0, 1.0)]
    other.delete_run(lease.run_id)  # msda runs rm --force
    assert not other.leases[lease.run_id].renew()
    with pytest.raises(LeaseLost, match="deleted") as info:
        other.leases[lease.run_id].check()
    assert info.value.deleted


def test_recording_an_epoch_again_replaces_its_rows(db_path):
    store = Store(db_path)
    lease = _run(store)
    for value in (2.0, 1.5):
        store.record_epoch(lease.run_id, 0, TRAIN, [(TRAIN_LOSS, value)], epochs_done=1)
    assert query(db_path, "SELECT epoch, value FROM metric") == [(0, 1.5)]


def test_non_finite_values_are_stored_as_they_are(db_path):
    store = Store(db_path)
    lease = _run(store)
    nan, inf = float("nan"), float("inf")
    store.record_epoch(lease.run_id, 0, TRAIN, [(TRAIN_LOSS, nan), (LR, inf), ("x", -inf)], epochs_done=1)
    store.finish_run(lease.run_id, {EVAL: [(TOP1, nan)]})
    got = {m.name: m.value for m in store.metrics(lease.run_id)}
    assert got[LR] == inf and got["x"] == -inf and got[TRAIN_LOSS] != got[TRAIN_LOSS] and got[TOP1] != got[TOP1]
    frame = store.final_metrics_frame()
    assert frame["value"].dtype == float and frame["value"].isna().all()


def test_invalid_ids_never_reach_a_path(db_path, tmp_path):
    store = Store(db_path)
    for bad in ("../victim", "", "ABCDEF12", "12345678/..", "0" * 9):
        with pytest.raises(MsdaError):
            store.run_dir(bad)
    with pytest.raises(MsdaError, match="unknown run id"):
        store.get_run("../victim")
    with pytest.raises(MsdaError, match="invalid run id"):
        store.create_run(id="../victim")
    assert json.loads(store.get_run(_run(store).run_id).config) == {}
