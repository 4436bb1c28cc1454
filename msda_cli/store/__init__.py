"""The SQLite results store: runs, their metrics, and data subsets.

`Store` is the only code that talks to the database. Only the main process of a
distributed run writes; every write is one short transaction.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Iterable

import pandas as pd
from sqlalchemy import delete, update
from sqlmodel import Session, select

from msda_cli.errors import MsdaError
from msda_cli.store.tables import Metric, Run, Subset, utcnow

# A run on another host whose heartbeat is older than this is taken as dead.
STALE_AFTER = timedelta(minutes=15)


def new_id(n: int = 8) -> str:
    return uuid.uuid4().hex[:n]


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    def __init__(self, db_path: Path | str | None = None, create: bool = True):
        from msda_cli.store.db import default_db_path, make_engine, results_dir

        self.path = Path(db_path) if db_path is not None else default_db_path()
        self.engine = make_engine(db_path, create=create)
        self.results_dir = results_dir(self.path)

    def run_dir(self, run_id: str) -> Path:
        return self.results_dir / "runs" / run_id

    # ----- runs -----------------------------------------------------------------
    def create_run(self, **fields) -> Run:
        run = Run(
            id=fields.pop("id", None) or new_id(), pid=os.getpid(), host=socket.gethostname(),
            heartbeat_at=utcnow(), status="running", **fields,
        )
        with Session(self.engine) as s:
            s.add(run)
            s.commit()
            s.refresh(run)
        return run

    def update_run(self, run_id: str, **fields) -> None:
        with Session(self.engine) as s:
            s.exec(update(Run).where(Run.id == run_id).values(**fields))
            s.commit()

    def heartbeat(self, run_id: str, **fields) -> None:
        self.update_run(run_id, heartbeat_at=utcnow(), **fields)

    def finish_run(self, run_id: str) -> None:
        now = utcnow()
        self.update_run(run_id, status="finished", finished_at=now, heartbeat_at=now, error=None)

    def fail_run(self, run_id: str, error: str, status: str = "failed") -> None:
        self.update_run(run_id, status=status, error=error[:4000], heartbeat_at=utcnow())

    def discard_epochs_from(self, run_id: str, epoch: int) -> None:
        """Drop per-epoch metrics of epochs a resumed run will train again."""
        with Session(self.engine) as s:
            s.exec(delete(Metric).where(Metric.run_id == run_id).where(Metric.epoch >= epoch))
            s.commit()

    def get_run(self, run_id: str) -> Run:
        self.mark_dead_runs()
        with Session(self.engine) as s:
            run = s.get(Run, run_id)
            if run is None:
                matches = s.exec(select(Run).where(Run.id.startswith(run_id, autoescape=True))).all() if run_id else []
                if len(matches) == 1:
                    return matches[0]
                hint = f" ({len(matches)} runs start with it)" if matches else "; see `msda runs list`"
                raise MsdaError(f"unknown run id {run_id!r}{hint}")
            return run

    def list_runs(self, status: str | None = None) -> list[Run]:
        self.mark_dead_runs()
        with Session(self.engine) as s:
            q = select(Run).order_by(Run.created_at)
            if status:
                q = q.where(Run.status == status)
            return list(s.exec(q).all())

    def delete_run(self, run_id: str) -> None:
        with Session(self.engine) as s:
            s.exec(delete(Metric).where(Metric.run_id == run_id))
            s.exec(delete(Subset).where(Subset.source_run_id == run_id))
            s.exec(delete(Run).where(Run.id == run_id))
            s.commit()

    def mark_dead_runs(self) -> int:
        """Flip `running` runs whose process is gone (same host) or silent (other host) to interrupted."""
        host, now = socket.gethostname(), utcnow()
        dead = []
        with Session(self.engine) as s:
            for run in s.exec(select(Run).where(Run.status == "running")).all():
                if run.host == host:
                    gone = not pid_alive(run.pid) or (run.pid == os.getpid() and run.id not in _LIVE_RUNS)
                else:
                    gone = run.heartbeat_at is None or now - run.heartbeat_at > STALE_AFTER
                if gone:
                    dead.append(run.id)
            if dead:
                s.exec(update(Run).where(Run.id.in_(dead)).where(Run.status == "running").values(status="interrupted"))
                s.commit()
        return len(dead)

    # ----- metrics ----------------------------------------------------------------
    def add_metrics(self, run_id: str, kind: str, values: Iterable[tuple]) -> None:
        """values: (name, value) or (name, value, epoch) or (name, value, epoch, params)."""
        rows = []
        for item in values:
            name, value, epoch, params = (tuple(item) + (None, None))[:4]
            rows.append(Metric(run_id=run_id, kind=kind, name=name, value=float(value), epoch=epoch,
                               params=json.dumps(params or {}, sort_keys=True)))
        with Session(self.engine) as s:
            s.add_all(rows)
            s.commit()

    def metrics(self, run_id: str, kind: str | None = None) -> list[Metric]:
        with Session(self.engine) as s:
            q = select(Metric).where(Metric.run_id == run_id).order_by(Metric.id)
            if kind:
                q = q.where(Metric.kind == kind)
            return list(s.exec(q).all())

    def final_metrics_frame(self) -> pd.DataFrame:
        """Every final (epoch is null) metric joined with its run's columns: the report's input."""
        self.mark_dead_runs()
        query = (
            "SELECT m.run_id, m.kind, m.name AS metric, m.value, m.params, m.created_at AS metric_at, "
            "r.name, r.recipe, r.dataset, r.arch, r.method, r.seed, r.status, r.config, r.subset_id "
            "FROM metric m JOIN run r ON r.id = m.run_id WHERE m.epoch IS NULL"
        )
        with self.engine.connect() as con:
            return pd.read_sql_query(query, con)

    def runs_frame(self) -> pd.DataFrame:
        self.mark_dead_runs()
        with self.engine.connect() as con:
            return pd.read_sql_query("SELECT * FROM run ORDER BY created_at", con)

    # ----- subsets ----------------------------------------------------------------
    def add_subset(self, **fields) -> Subset:
        subset = Subset(id=fields.pop("id", None) or new_id(), **fields)
        with Session(self.engine) as s:
            s.add(subset)
            s.commit()
            s.refresh(subset)
        return subset

    def get_subset(self, subset_id: str) -> Subset:
        with Session(self.engine) as s:
            subset = s.get(Subset, subset_id)
        if subset is None:
            raise MsdaError(f"unknown subset id {subset_id!r}; see `msda subsample` output or the subset table")
        return subset

    def list_subsets(self) -> list[Subset]:
        with Session(self.engine) as s:
            return list(s.exec(select(Subset).order_by(Subset.created_at)).all())


# Run ids this process is training right now (so a same-pid check cannot misfire).
_LIVE_RUNS: set[str] = set()
