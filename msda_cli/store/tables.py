"""The results store's tables (SQLModel). Accuracy-like values are percentages (0-100)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


RUN_STATUSES = ("running", "finished", "failed", "interrupted")


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
    host: str = ""
    error: Optional[str] = None
    checkpoint: Optional[str] = None
    subset_id: Optional[str] = None
    msda_version: str = ""


class Metric(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str = Field(sa_column=Column(String, ForeignKey("run.id", ondelete="CASCADE"), index=True, nullable=False))
    kind: str = Field(index=True)
    name: str = Field(index=True)
    value: float
    epoch: Optional[int] = None  # None for final values
    params: str = "{}"  # JSON: attack settings, source run, deformation ...
    created_at: datetime = Field(default_factory=utcnow)


class Subset(SQLModel, table=True):
    id: str = Field(primary_key=True)
    source_run_id: str = Field(sa_column=Column(String, ForeignKey("run.id", ondelete="CASCADE"), index=True, nullable=False))
    measure: str
    ratio: float
    seed: int = 0
    size: int
    indices_path: str
    params: str = "{}"  # JSON: every other selection setting (order, select, mixes, ...)
    created_at: datetime = Field(default_factory=utcnow)
