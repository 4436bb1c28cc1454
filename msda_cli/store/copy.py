"""Copying every run, metric and subset of one store into another (SQLite <-> PostgreSQL), adding only
what the target lacks, in one transaction on the target: a copy that fails writes nothing, and a
second copy adds nothing.

- A run the target lacks is copied whole, with its metrics, under the same id.
- A run both hold must have the same config (else the copy stops: two runs share an id). If the
  source's is further on (more epochs done, or finished), the target's row takes the source's
  progress fields (status, epochs, checkpoint, owner ...); annotations made on the target stay.
- Metrics are rows without an identity of their own: of each (kind, name, epoch, params) of a run,
  the target gets the source's rows beyond the number it already holds (a run trained on since the
  last copy gets its new epochs and final values, and nothing twice).
- A subset the target lacks is copied under the same id; its `indices_path` is kept as it is (the
  index file is not copied: it stays in the source's results folder).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import false, insert, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from msda_cli.errors import MsdaError
from msda_cli.store.tables import Metric, Run, Subset

# What a further-on source run brings to the target's row (the researcher's name, tags and note stay).
PROGRESS = ("status", "epochs_done", "finished_at", "heartbeat_at", "pid", "pid_started", "host", "lease", "error",
            "checkpoint", "msda_version", "provenance", "slurm_job")
# pg_advisory_xact_lock key of a copy into a PostgreSQL store: the bytes "copy".
COPY_LOCK = 0x636F7079


@dataclass
class CopySummary:
    runs_added: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    metrics_added: int = 0
    subsets_added: int = 0

    def line(self, source: str, target: str) -> str:
        return (f"copied {source} -> {target}: {self.runs_added} runs added, {self.runs_updated} brought up to date, "
                f"{self.runs_unchanged} already there; {self.metrics_added} metrics and {self.subsets_added} subsets "
                "added")


def _key(metric) -> tuple:
    return metric.kind, metric.name, metric.epoch, metric.params


def _further(src: Run, dst: Run) -> bool:
    return src.epochs_done > dst.epochs_done or (src.status == "finished" and dst.status != "finished")


def _read(store) -> tuple[list[Run], dict[str, list[Metric]], list[Subset]]:
    engine = store.engine
    if engine.dialect.name == "postgresql":  # one snapshot: runs and metrics of the same moment
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        with Session(engine) as s:
            runs = list(s.exec(select(Run).order_by(Run.created_at)).all())
            metrics = defaultdict(list)
            for m in s.exec(select(Metric).order_by(Metric.id)).all():
                metrics[m.run_id].append(m)
            subsets = list(s.exec(select(Subset).order_by(Subset.created_at)).all())
    except DBAPIError as e:
        raise store.explain(e) from None
    return runs, metrics, subsets


def _begin_writing(s: Session) -> None:
    """Take the target's write lock first: SQLite then waits for other writers instead of failing a
    snapshot it already read; concurrent copies into PostgreSQL run one after the other."""
    if s.get_bind().dialect.name == "postgresql":
        s.exec(text(f"SELECT pg_advisory_xact_lock({COPY_LOCK})"))
    else:
        s.exec(update(Run).where(false()).values(name=Run.name))


def copy_store(source, target, progress=None) -> CopySummary:
    """Copy what `target` (a writable Store) lacks of `source` (a Store); `progress(done, total)` after each run."""
    if source.target == target.target or (source.path is not None and target.path is not None
                                          and source.path.resolve() == target.path.resolve()):
        raise MsdaError(f"--from and --to both name {target.where}; nothing to copy")
    runs, metrics, subsets = _read(source)
    summary = CopySummary()
    try:
        with Session(target.engine) as s:
            _begin_writing(s)
            have = {r.id: r for r in s.exec(select(Run)).all()}
            held = defaultdict(Counter)
            for m in s.exec(select(Metric)).all():
                held[m.run_id][_key(m)] += 1
            rows = []
            for done, run in enumerate(runs, 1):
                mine = have.get(run.id)
                if mine is None:
                    s.exec(insert(Run).values(**run.model_dump()))
                    summary.runs_added += 1
                elif mine.config != run.config:
                    raise MsdaError(f"run {run.id} is in both stores with different configs (two runs share an id); "
                                    "nothing was copied")
                elif _further(run, mine):
                    s.exec(update(Run).where(Run.id == run.id).values({f: getattr(run, f) for f in PROGRESS}))
                    summary.runs_updated += 1
                else:
                    summary.runs_unchanged += 1
                seen = Counter()
                for m in metrics.get(run.id, []):
                    seen[_key(m)] += 1
                    if seen[_key(m)] > held[run.id][_key(m)]:
                        rows.append(m.model_dump(exclude={"id"}))
                if progress is not None:
                    progress(done, len(runs))
            if rows:
                s.exec(insert(Metric), params=rows)
            summary.metrics_added = len(rows)
            known = {sub.id: sub for sub in s.exec(select(Subset)).all()}
            for sub in subsets:
                if sub.id not in known:
                    s.exec(insert(Subset).values(**sub.model_dump()))
                    summary.subsets_added += 1
                elif known[sub.id].source_run_id != sub.source_run_id:
                    raise MsdaError(f"subset {sub.id} is in both stores with different source runs; nothing was copied")
            s.commit()
    except DBAPIError as e:
        raise target.explain(e) from None
    return summary
