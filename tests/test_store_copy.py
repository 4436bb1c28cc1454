"""`msda store copy`: SQLite <-> PostgreSQL, idempotent, a run trained on since gets what it lacks, one
transaction (a refused copy writes nothing)."""

from datetime import timezone

import pytest

from pg import query_db
from msda_cli.metric_names import EVAL, TOP1, TRAIN, TRAIN_LOSS
from msda_cli.store import Store

COUNTS = "SELECT (SELECT count(*) FROM run), (SELECT count(*) FROM metric), (SELECT count(*) FROM subset)"


def _fill(db: str, tmp_path) -> tuple[str, str]:
    """A store with a finished run (NaN among its metrics, a subset) and one stopped after epoch 1 of 3."""
    store = Store(db)
    done = store.start_run(dataset="digits", method="mixup", config='{"epochs": 2}')
    for epoch in range(2):
        store.record_epoch(done.run_id, epoch, TRAIN, [(TRAIN_LOSS, 1.0 / (epoch + 1))], epochs_done=epoch + 1)
    store.finish_run(done.run_id, {EVAL: [(TOP1, 91.5), ("nll", float("nan"))]})
    store.add_subset(source_run_id=done.run_id, measure="cv", ratio=0.5, size=5, indices_path=str(tmp_path / "i.npy"))
    done.release()
    part = store.start_run(dataset="digits", method="vanilla", config='{"epochs": 3}')
    store.record_epoch(part.run_id, 0, TRAIN, [(TRAIN_LOSS, 2.0)], epochs_done=1)
    part.release()
    store.update_run(part.run_id, status="interrupted")
    return done.run_id, part.run_id


def _rows(db: str) -> list[tuple]:
    """Every metric as msda reads it (NaN as text: NaN != NaN)."""
    store = Store(db, read_only=True)
    return sorted((m.run_id, m.kind, m.name, str(m.value), m.epoch or -1, m.params)
                  for run in store.list_runs() for m in store.metrics(run.id))


def _runs(db: str) -> list[tuple]:
    return sorted((r.id, r.status, r.epochs_done, r.config, r.checkpoint, _aware(r.created_at), _aware(r.heartbeat_at))
                  for r in Store(db, read_only=True).list_runs())


def _aware(moment):
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("direction", ["sqlite-to-postgresql", "postgresql-to-sqlite"])
def test_copy_between_backends_is_idempotent_and_completes_a_run(msda, pg_url, isolated_results, tmp_path,
                                                                 direction):
    sqlite = str(isolated_results / "msda.db")
    source, target = (sqlite, pg_url) if direction.startswith("sqlite") else (pg_url, sqlite)
    done, part = _fill(source, tmp_path)
    r = msda("store", "copy", "--from", source, "--to", target)
    assert r.code == 0, r.stderr
    assert "2 runs added" in r.stdout and "5 metrics and 1 subsets added" in r.stdout
    assert query_db(target, COUNTS) == query_db(source, COUNTS) == [(2, 5, 1)]
    assert _rows(target) == _rows(source) and "'nan'" in str(_rows(target))
    assert _runs(target) == _runs(source)
    assert [s.id for s in Store(target).list_subsets()] == [s.id for s in Store(source).list_subsets()]

    r = msda("store", "copy", "--from", source, "--to", target)  # a second copy adds nothing
    assert r.code == 0 and "0 runs added, 0 brought up to date, 2 already there; 0 metrics and 0 subsets" in r.stdout
    assert query_db(target, COUNTS) == [(2, 5, 1)]

    store = Store(source)  # the stopped run trains on in the source, and is annotated in the target
    lease = store.take_over(part)
    for epoch in (1, 2):
        store.record_epoch(part, epoch, TRAIN, [(TRAIN_LOSS, 1.0)], epochs_done=epoch + 1)
    store.finish_run(part, {EVAL: [(TOP1, 80.0)]})
    lease.release()
    Store(target).annotate_run(part, note="copied")
    r = msda("store", "copy", "--from", source, "--to", target)
    assert r.code == 0 and "0 runs added, 1 brought up to date, 1 already there; 3 metrics" in r.stdout, r.stdout
    assert _rows(target) == _rows(source)
    assert query_db(target, "SELECT status, epochs_done, note FROM run WHERE id = :r", r=part) == [
        ("finished", 3, "copied")]


def test_a_copy_that_is_refused_writes_nothing(msda, pg_url, isolated_results, tmp_path):
    sqlite = str(isolated_results / "msda.db")
    done, part = _fill(sqlite, tmp_path)
    target = Store(pg_url)
    target.create_run(id=part, config='{"epochs": 99}')  # another run under the same id
    r = msda("store", "copy", "--from", sqlite, "--to", pg_url)
    assert r.code == 2 and "different configs" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert query_db(pg_url, COUNTS) == [(1, 0, 0)]
    r = msda("store", "copy", "--from", sqlite, "--to", sqlite)
    assert r.code == 2 and "both name" in r.stderr
    r = msda("store", "copy", "--from", str(tmp_path / "none.db"), "--to", pg_url)
    assert r.code == 2 and "no results database" in r.stderr and not (tmp_path / "none.db").exists()
