"""The results store's tables (SQLModel). Accuracy-like values are percentages (0-100).

A run row also holds its lease: `lease` (a random token), `host`, `pid` and `pid_started` name the
one process that may write for the run (see `msda_cli.store.lease`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Float, ForeignKey, String
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from msda_cli.choices import RUN_STATUSES  # one source with --help


def utcnow() -> datetime:
    return datetime.now(timezone.utc)



# The text a NaN is stored as: SQLite turns a bound NaN into NULL (and a NOT NULL column refuses
# it), while ±inf are stored as REAL as they are.
NAN_TEXT = "NaN"


class FaithfulFloat(TypeDecorator):
    """A REAL column that keeps NaN (as the text NAN_TEXT) and ±inf."""

    impl = Float
    cache_ok = True

    def bind_processor(self, dialect):
        if dialect.name != "sqlite":  # PostgreSQL's double precision keeps NaN itself
            return super().bind_processor(dialect)
        # Not process_bind_param: Float's own bind processor would turn the text back into NaN.
        return lambda value: NAN_TEXT if isinstance(value, float) and value != value else value

    def process_result_value(self, value, dialect):
        return None if value is None else float(value)


class Run(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = ""
    recipe: str = ""
    dataset: str = Field(default="", index=True)
    arch: str = Field(default="", index=True)
    method: str = Field(default="", index=True)
    seed: int = 0
    config: str = "{}"  # JSON of the full resolved config
    status: str = Field(default="running", index=True)
    epochs_done: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None
    heartbeat_at: Optional[datetime] = None
    pid: Optional[int] = None
    pid_started: Optional[int] = None  # the owner's start time, clock ticks after boot
    host: str = ""
    lease: Optional[str] = None  # the owner's random token; every write for the run names it
    error: Optional[str] = None
    checkpoint: Optional[str] = None
    subset_id: Optional[str] = None
    msda_version: str = ""
    tags: Optional[str] = ""  # comma-separated, sorted (msda_cli.store.tags); NULL in rows older than schema 2
    note: Optional[str] = ""
    # JSON: msda version, git commit (and dirty), command line, library versions, GPU (schema 3)
    provenance: Optional[str] = None
    slurm_job: Optional[str] = None  # the Slurm job (array task) id when a scheduler runs it (schema 3)


class Metric(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str = Field(sa_column=Column(String, ForeignKey("run.id", ondelete="CASCADE"), index=True, nullable=False))
    kind: str = Field(index=True)
    name: str = Field(index=True)
    value: float = Field(sa_type=FaithfulFloat)  # NaN and ±inf kept (a diverged loss)
    epoch: Optional[int] = None  # None for final values
    params: str = "{}"  # JSON: attack settings, source run, deformation ...
    created_at: datetime = Field(default_factory=utcnow)


class Subset(SQLModel, table=True):
    id: str = Field(primary_key=True)
    source_run_id: str = Field(
        sa_column=Column(String, ForeignKey("run.id", ondelete="CASCADE"), index=True, nullable=False))
    measure: str
    ratio: float
    seed: int = 0
    size: int
    indices_path: str
    params: str = "{}"  # JSON: every other selection setting (order, select, mixes, ...)
    created_at: datetime = Field(default_factory=utcnow)
