"""The results store (SQLite or PostgreSQL): runs, their metrics, and data subsets.

`Store` is the only code that talks to the database. Only the main process of a distributed run
writes; every write is one short transaction that begins with a write. Database errors leave it
as one-line `StoreError`s (a full disk, a read-only or locked file, corruption).

Runs are owned through leases (`msda_cli.store.lease`): `start_run` creates a run held by this
process, `take_over` resumes one whose owner is gone. For a run this Store holds, every write
(`update_run`, `add_metrics`, `record_epoch`, `finish_run`, `fail_run`, `discard_epochs_from`)
is conditioned on the lease token in the same transaction and renews the heartbeat; if the
lease is gone it writes nothing and raises `LeaseLost`.

What the training loop calls, and what each guarantees:

- `record_epoch(run_id, epoch, kind, rows, **run_fields)`: one epoch's rows and the run's fields
  (`epochs_done`, `checkpoint` ...) in one transaction: a kill leaves all of it or none of it, and
  recording an epoch again replaces its rows of that kind instead of doubling them;
- `finish_run(run_id, {kind: rows})`: the final rows and status `finished` in one transaction;
- `discard_epochs_from(run_id, epoch)`: drop the per-epoch rows a resumed run will train again;
- `fail_run(run_id, message, status)`: record why a run stopped, if this process still owns it.

Run ids are 8 hexadecimal digits (`new_id`); user input is checked as an id or a prefix of one,
and run folders are resolved inside the results directory (`run_dir`).
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from msda_cli.errors import MsdaError
from msda_cli.faults import declare, fault_point
from msda_cli.store import db, postgres
from msda_cli.store.db import StoreError
from msda_cli.store.url import Target, parse, results_dir
from msda_cli.store.lease import Lease, LeaseLost, owner_alive, owner_text
from msda_cli.store.process import ProcessId
from msda_cli.store.tables import NAN_TEXT, Metric, Run, Subset, utcnow

__all__ = ["Store", "StoreError", "LeaseLost", "new_id", "check_run_id"]

# Inside an epoch's transaction before it commits; after a take-over commits, before it is used.
declare("store.epoch_before_commit", "store.take_over_committed", "store.finish_before_commit")

ID_LENGTH = 8
_ID = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")
_ID_PREFIX = re.compile(rf"[0-9a-f]{{1,{ID_LENGTH}}}")


def new_id(n: int = ID_LENGTH) -> str:
    return uuid.uuid4().hex[:n]


def check_run_id(text: str) -> str:
    """`text` if it can be a run id or a prefix of one (MsdaError otherwise, before any lookup)."""
    if not isinstance(text, str) or not _ID_PREFIX.fullmatch(text):
        raise MsdaError(f"unknown run id {text!r}: run ids are {ID_LENGTH} hexadecimal digits (a unique prefix "
                        "will do); see `msda runs list`")
    return text


def _metric_rows(run_id: str, kind: str, values: Iterable[tuple]) -> list[Metric]:
    """values: (name, value) or (name, value, epoch) or (name, value, epoch, params)."""
    rows = []
    for item in values:
        name, value, at, params = (tuple(item) + (None, None))[:4]
        rows.append(Metric(run_id=run_id, kind=kind, name=name, value=float(value), epoch=at,
                           params=json.dumps(params or {}, sort_keys=True)))
    return rows


class Store:
    """The results database `db_path` (default: $MSDA_DB, else results/msda.db): a SQLite file's path,
    or a PostgreSQL URL (`msda_cli.store.url`); `where` shows it (a password hidden), `path` is the
    file's (None for a URL store).

    create=False: a missing database is an error (commands that need stored runs). read_only=True:
    the store never writes (listing and reporting work on a read-only file system, a missing
    database reads as empty instead of being created, and PostgreSQL runs read-only transactions).
    """

    def __init__(self, db_path: Path | str | Target | None = None, create: bool = True, read_only: bool = False):
        self.target = parse(db_path)
        self.path, self.where = self.target.path, self.target.shown()
        self.read_only = read_only
        if self.target.is_sqlite:
            self.engine = db.make_engine(self.path if db_path is not None else None, create=create,
                                         read_only=read_only)
        else:
            self.engine = postgres.make_engine(self.target, create=create, read_only=read_only)
        self.results_dir = results_dir(self.target)
        self.leases: dict[str, Lease] = {}

    def explain(self, error: Exception) -> StoreError:
        """The one-line StoreError of a database error on this store."""
        if self.target.is_sqlite:
            return db.explain(error, self.path)
        return postgres.explain(error, self.target)

    @contextmanager
    def _session(self):
        try:
            with Session(self.engine) as s:
                yield s
        except DBAPIError as e:
            raise self.explain(e) from None

    def run_dir(self, run_id: str) -> Path:
        """The run's folder, always inside <results>/runs (a crafted id cannot point elsewhere)."""
        if not _ID.fullmatch(run_id or ""):
            raise MsdaError(f"invalid run id {run_id!r}: run ids are {ID_LENGTH} hexadecimal digits")
        root = (self.results_dir / "runs").resolve()
        folder = (root / run_id).resolve()
        if folder.parent != root:  # a symlinked run folder that leads out of the results
            raise MsdaError(f"run folder {root / run_id} leads outside {root}; remove the link by hand")
        return root / run_id

    # ----- runs and their leases ----------------------------------------------------------------
    def create_run(self, **fields) -> Run:
        """A new `running` row owned by this process under a fresh lease token (see `start_run`)."""
        run_id = fields.pop("id", None) or new_id()
        if not _ID.fullmatch(run_id):
            raise MsdaError(f"invalid run id {run_id!r}: run ids are {ID_LENGTH} hexadecimal digits")
        me = ProcessId.current()
        run = Run(id=run_id, pid=me.pid, pid_started=me.started, host=me.host,
                  lease=uuid.uuid4().hex, heartbeat_at=utcnow(), status="running", **fields)
        with self._session() as s:
            s.add(run)
            s.commit()
            s.refresh(run)
        return run

    def start_run(self, **fields) -> Lease:
        """Create a run and hold it: the returned lease's run is written only by this process."""
        run = self.create_run(**fields)
        return self._hold(run.id, run.lease)

    def take_over(self, run_id: str) -> Lease:
        """Hold an existing run to resume it; MsdaError if it finished or its owner is alive.

        One compare-and-set UPDATE on the status, token and heartbeat just read: of several
        processes resuming the run at once, exactly one gets it."""
        run = self.resumable(run_id)
        me, token = ProcessId.current(), uuid.uuid4().hex
        with self._session() as s:
            taken = s.exec(update(Run).where(
                Run.id == run.id, Run.status == run.status, Run.lease.is_not_distinct_from(run.lease),
                Run.heartbeat_at.is_not_distinct_from(run.heartbeat_at),
            ).values(status="running", lease=token, host=me.host, pid=me.pid, pid_started=me.started,
                     heartbeat_at=utcnow(), error=None, finished_at=None)).rowcount
            s.commit()
        fault_point("store.take_over_committed")
        if not taken:
            raise MsdaError(f"run {run.id} was just taken by another process ({owner_text(self.get_run(run.id))}); "
                            "it resumes the run")
        return self._hold(run.id, token)

    def resumable(self, run_id: str) -> Run:
        """The run, if it may be resumed now: not finished, and its owner gone (MsdaError otherwise)."""
        run = self.get_run(run_id)
        if run.status == "finished":
            raise MsdaError(f"run {run.id} already finished; nothing to resume")
        if owner_alive(run):
            raise MsdaError(f"run {run.id} is still running ({owner_text(run)}); stop it before resuming, "
                            "or wait until its heartbeat is stale")
        return run

    def _hold(self, run_id: str, token: str) -> Lease:
        lease = Lease(self, run_id, token)
        self.leases[run_id] = lease
        return lease

    def renew_lease(self, lease: Lease) -> bool:
        """Renew the heartbeat of a held run (putting back `running`); False if the lease is gone."""
        with self._session() as s:
            held = s.exec(update(Run).where(Run.id == lease.run_id, Run.lease == lease.token,
                                            Run.status.in_(("running", "interrupted")))
                          .values(heartbeat_at=utcnow(), status="running")).rowcount
            s.commit()
        return bool(held)

    def lease_lost(self, lease: Lease) -> LeaseLost:
        """The error that stops a process whose lease is gone, saying where the run went."""
        with self._session() as s:
            run = s.get(Run, lease.run_id)
        if run is None:
            return LeaseLost(f"run {lease.run_id} was deleted (msda runs rm) while this process trained it; "
                             "training stopped", lease.run_id, deleted=True)
        return LeaseLost(f"run {lease.run_id} was taken over by {owner_text(run)}; this process stopped training it",
                         lease.run_id, deleted=False)

    def _claim(self, s: Session, run_id: str, **fields) -> None:
        """The first statement of a write for `run_id`: if this Store holds the run, renew the lease
        (setting `fields`) under its token, or raise LeaseLost; otherwise set `fields`, if any."""
        lease = self.leases.get(run_id)
        if lease is None:
            if fields:
                s.exec(update(Run).where(Run.id == run_id).values(**fields))
            return
        values = {"heartbeat_at": utcnow(), "status": "running", **fields}
        if not s.exec(update(Run).where(Run.id == run_id, Run.lease == lease.token).values(**values)).rowcount:
            s.rollback()
            lease.lost.set()
            raise self.lease_lost(lease)

    def update_run(self, run_id: str, **fields) -> None:
        with self._session() as s:
            self._claim(s, run_id, **fields)
            s.commit()

    def heartbeat(self, run_id: str, **fields) -> None:
        self.update_run(run_id, heartbeat_at=utcnow(), **fields)

    def record_epoch(self, run_id: str, epoch: int, kind: str, values: Iterable[tuple], **run_fields) -> None:
        """One epoch's rows of `kind` (name, value[, params]) and the run's `run_fields`, in one
        transaction; rows of that kind and epoch stored before (by a killed run) are replaced."""
        rows = _metric_rows(run_id, kind, [(name, value, epoch, *params) for name, value, *params in values])
        with self._session() as s:
            self._claim(s, run_id, **run_fields)
            s.exec(delete(Metric).where(Metric.run_id == run_id, Metric.kind == kind, Metric.epoch == epoch))
            s.add_all(rows)
            s.flush()
            fault_point("store.epoch_before_commit")
            s.commit()

    def finish_run(self, run_id: str, metrics: Mapping[str, Iterable[tuple]] | None = None) -> None:
        """Store the final rows ({kind: [(name, value[, None, params])]}) and mark the run finished, at once."""
        now = utcnow()
        with self._session() as s:
            self._claim(s, run_id, status="finished", finished_at=now, heartbeat_at=now, error=None)
            s.add_all([row for kind, values in (metrics or {}).items() for row in _metric_rows(run_id, kind, values)])
            s.flush()
            fault_point("store.finish_before_commit")
            s.commit()

    def fail_run(self, run_id: str, error: str, status: str = "failed") -> bool:
        """Record why a run stopped; False (nothing written) if this process no longer owns it."""
        try:
            self.update_run(run_id, status=status, error=error[:4000], heartbeat_at=utcnow())
        except LeaseLost:
            return False
        return True

    def discard_epochs_from(self, run_id: str, epoch: int) -> None:
        """Drop per-epoch metrics of epochs a resumed run will train again."""
        with self._session() as s:
            self._claim(s, run_id)
            s.exec(delete(Metric).where(Metric.run_id == run_id).where(Metric.epoch >= epoch))
            s.commit()

    def get_run(self, run_id: str) -> Run:
        """The run with id `run_id` or the one run whose id starts with it; MsdaError otherwise."""
        check_run_id(run_id)
        dead = self.mark_dead_runs()
        with self._session() as s:
            run = s.get(Run, run_id)
            if run is None:
                matches = s.exec(select(Run).where(Run.id.startswith(run_id, autoescape=True))).all()
                if len(matches) != 1:
                    hint = f" ({len(matches)} runs start with it)" if matches else "; see `msda runs list`"
                    raise MsdaError(f"unknown run id {run_id!r}{hint}")
                run = matches[0]
        return self._shown(run, dead)

    def list_runs(self, status: str | None = None) -> list[Run]:
        dead = self.mark_dead_runs()
        with self._session() as s:
            runs = [self._shown(r, dead) for r in s.exec(select(Run).order_by(Run.created_at)).all()]
        return [r for r in runs if status is None or r.status == status]

    @staticmethod
    def _shown(run: Run, dead: set[str]) -> Run:
        if run.id in dead and run.status == "running":  # a reader's verdict, not written
            run.status = "interrupted"
        return run

    def delete_run(self, run_id: str) -> None:
        with self._session() as s:
            # The run row first, as every writer locks it first (PostgreSQL; SQLite ignores FOR UPDATE).
            s.exec(select(Run.id).where(Run.id == run_id).with_for_update())
            s.exec(delete(Metric).where(Metric.run_id == run_id))
            s.exec(delete(Subset).where(Subset.source_run_id == run_id))
            s.exec(delete(Run).where(Run.id == run_id))
            s.commit()

    def annotate_run(self, run_id: str, **fields) -> None:
        """Set what a researcher writes on a run (name, tags, note); no lease: the trainer never writes these."""
        unknown = set(fields) - {"name", "tags", "note"}
        if unknown:
            raise ValueError(f"annotate_run sets name, tags and note, not {sorted(unknown)}")
        with self._session() as s:
            s.exec(update(Run).where(Run.id == run_id).values(**fields))
            s.commit()

    def mark_dead_runs(self) -> set[str]:
        """The ids of `running` runs whose owner is gone (a dead, zombie or reused pid here; a stale
        heartbeat elsewhere). A writable store flips them to interrupted, each by a compare-and-set on
        the token and heartbeat it judged, so a run resumed or renewed meanwhile stays running."""
        with self._session() as s:
            dead = [r for r in s.exec(select(Run).where(Run.status == "running")).all() if not owner_alive(r)]
            if self.read_only or not dead:
                return {r.id for r in dead}
            flipped = set()
            for run in dead:
                if s.exec(update(Run).where(
                    Run.id == run.id, Run.status == "running", Run.lease.is_not_distinct_from(run.lease),
                    Run.heartbeat_at.is_not_distinct_from(run.heartbeat_at),
                ).values(status="interrupted")).rowcount:
                    flipped.add(run.id)
            s.commit()
        return flipped

    # ----- metrics ----------------------------------------------------------------
    def add_metrics(self, run_id: str, kind: str, values: Iterable[tuple]) -> None:
        """values: (name, value) or (name, value, epoch) or (name, value, epoch, params); NaN and ±inf kept."""
        rows = _metric_rows(run_id, kind, values)
        with self._session() as s:
            self._claim(s, run_id)
            s.add_all(rows)
            s.commit()

    def metrics(self, run_id: str, kind: str | None = None) -> list[Metric]:
        with self._session() as s:
            q = select(Metric).where(Metric.run_id == run_id).order_by(Metric.id)
            if kind:
                q = q.where(Metric.kind == kind)
            return list(s.exec(q).all())

    def _frame(self, query: str, id_column: str) -> pd.DataFrame:
        """A query's rows, with the `status` of runs whose owner is gone shown as interrupted."""
        dead = self.mark_dead_runs()
        try:
            with self.engine.connect() as con:
                frame = pd.read_sql_query(query, con)
        except DBAPIError as e:
            raise self.explain(e) from None
        frame.loc[frame["status"].eq("running") & frame[id_column].isin(dead), "status"] = "interrupted"
        return frame

    def final_metrics_frame(self) -> pd.DataFrame:
        """Every final (epoch is null) metric joined with its run's columns: the report's input."""
        frame = self._frame(
            "SELECT m.run_id, m.kind, m.name AS metric, m.value, m.params, m.created_at AS metric_at, "
            "r.name, r.recipe, r.dataset, r.arch, r.method, r.seed, r.status, r.config, r.subset_id, r.tags, r.note "
            "FROM metric m JOIN run r ON r.id = m.run_id WHERE m.epoch IS NULL", "run_id")
        frame["value"] = pd.to_numeric(frame["value"].replace(NAN_TEXT, float("nan")))
        return frame

    def runs_frame(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM run ORDER BY created_at", "id")

    # ----- subsets ----------------------------------------------------------------
    def add_subset(self, **fields) -> Subset:
        return self.add_subsets([fields])[0]

    def add_subsets(self, rows: Iterable[Mapping]) -> list[Subset]:
        """Several subset rows (fields as for `add_subset`) in one transaction: all of them or none."""
        subsets = [Subset(id=fields.pop("id", None) or new_id(), **fields) for fields in map(dict, rows)]
        with self._session() as s:
            s.add_all(subsets)
            s.commit()
            for subset in subsets:
                s.refresh(subset)
        return subsets

    def get_subset(self, subset_id: str) -> Subset:
        with self._session() as s:
            subset = s.get(Subset, subset_id)
        if subset is None:
            raise MsdaError(f"unknown subset id {subset_id!r}; see `msda subsample` output or the subset table")
        return subset

    def list_subsets(self) -> list[Subset]:
        with self._session() as s:
            return list(s.exec(select(Subset).order_by(Subset.created_at)).all())
