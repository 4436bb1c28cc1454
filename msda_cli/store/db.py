"""Opening the SQLite results store: paths, pragmas, and clear errors for bad files.

WAL lets readers (`msda report`) run while a training run writes; busy_timeout makes
concurrent writers wait instead of failing; writes are short transactions.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import SQLModel, create_engine

from msda_cli.errors import MsdaError
from msda_cli.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

BUSY_TIMEOUT_MS = 30_000


def results_dir(db_path: Path | None = None) -> Path:
    """Where run folders live: $MSDA_RESULTS, else the database's folder, else ./results."""
    env = os.environ.get("MSDA_RESULTS")
    if env:
        return Path(env)
    if db_path is not None:
        return Path(db_path).resolve().parent
    return Path("results")


def default_db_path() -> Path:
    env = os.environ.get("MSDA_DB")
    if env:
        return Path(env)
    return results_dir() / "msda.db"


def _set_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(db_path: Path | str | None = None, create: bool = True):
    """A SQLAlchemy engine on `db_path` with the tables created; MsdaError on a bad path or file."""
    explicit = db_path is not None or "MSDA_DB" in os.environ
    path = Path(db_path) if db_path is not None else default_db_path()
    parent = path.resolve().parent
    if not parent.is_dir():
        if explicit:
            raise MsdaError(f"database directory {parent} does not exist; create it or choose another --db")
        parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise MsdaError(f"database {path} is not writable; choose another --db")
    if path.exists() and path.stat().st_size > 0:
        _check_sqlite_file(path)
    if not create and not path.exists():
        raise MsdaError(f"no results database at {path}; train a run first or pass --db")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _set_pragmas)
    try:
        SQLModel.metadata.create_all(engine)
    except (DatabaseError, OperationalError) as e:
        raise MsdaError(f"cannot use database {path}: {e.orig}") from None
    return engine


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not a healthy SQLite database, before anything writes to it."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            con.execute("PRAGMA schema_version").fetchone()
            row = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise MsdaError(f"database {path} is corrupt or not an SQLite file ({e})") from None
    if row is None or row[0] != "ok":
        raise MsdaError(f"database {path} is corrupt ({row[0] if row else 'no answer'})")
