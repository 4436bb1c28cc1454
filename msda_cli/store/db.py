"""Opening the SQLite results store: paths, pragmas, the schema, and one-line errors (a PostgreSQL
store opens in `msda_cli.store.postgres`; `msda_cli.store.url` tells which one --db names).

WAL lets readers (`msda report`) run while a training run writes; busy_timeout makes
concurrent writers wait instead of failing; writes are short transactions that begin with a write
(SQLite then waits for the write lock instead of failing a snapshot it already read).

A writer's engine (`read_only=False`) creates a missing database and brings an older msda schema
up to date (`msda_cli.store.schema`). A reader's engine (`read_only=True`) never writes: it opens
the file `mode=ro` (`immutable=1` where the WAL index cannot be created, as on a read-only mount or
a full disk, and no WAL content is pending), and reads a missing or table-less database as an
empty store without creating it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlmodel import SQLModel

from msda_cli.errors import MsdaError
from msda_cli.store import schema, url
from msda_cli.store.url import results_dir

__all__ = ["StoreError", "make_engine", "empty_engine", "explain", "results_dir", "default_db_path"]

BUSY_TIMEOUT_MS = 30_000
# Below this much free space an I/O error is the disk being full (SQLite reports a failed
# WAL-index or journal extension as a plain I/O error).
FULL_BELOW_BYTES = 1 << 20


class StoreError(MsdaError):
    """The database cannot be used as asked (full disk, read-only, locked, corrupt, foreign): one line."""


def default_db_path() -> Path:
    """$MSDA_DB's path (a URL names no path: see `msda_cli.store.url`), else <results>/msda.db."""
    return url.parse(None).path or results_dir() / "msda.db"


def _disk_full(path: Path) -> bool:
    try:
        st = os.statvfs(path.resolve().parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW_BYTES


def explain(error: Exception, path: Path) -> StoreError:
    """One line for a database error (sqlite3's, or SQLAlchemy's wrapping of it)."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    if name.startswith("SQLITE_FULL") or (name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")) and _disk_full(path)):
        return StoreError(f"the disk holding database {path} is full ({text}); free some space and run the "
                          "command again (the database is intact)")
    if name.startswith("SQLITE_READONLY"):
        return StoreError(f"database {path} is read-only ({text})")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"database {path} stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreError(f"database {path} is corrupt or not an SQLite file ({text})")
    if name.startswith("SQLITE_IOERR"):
        return StoreError(f"database {path} cannot be read or written: disk I/O error ({name})")
    return StoreError(f"database {path}: {text}")


def _set_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _set_busy_timeout(dbapi_conn, _record):
    dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    # The pool hands a connection to one thread at a time (the heartbeat runs in its own thread).
    return sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)


def _read_only_uri(path: Path) -> str:
    """`mode=ro`, or `immutable=1` where the WAL index cannot be created and no WAL content is pending."""
    ro = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        _connect(ro, uri=True).execute("PRAGMA user_version").close()
        return ro
    except sqlite3.Error as e:
        wal = Path(f"{path}-wal")
        if getattr(e, "sqlite_errorname", "").startswith("SQLITE_CANTOPEN") or _disk_full(path):
            if not wal.exists() or wal.stat().st_size == 0:
                return f"file:{quote(str(path.resolve()))}?immutable=1"
        raise explain(e, path) from None


def _inspect(uri: str, path: Path, check: bool) -> schema.SchemaState:
    """The file's schema, read without writing; `check` also runs SQLite's quick_check."""
    try:
        con = _connect(uri, uri=True)
        try:
            con.execute("BEGIN")  # one snapshot: the version and the tables of the same moment
            state = schema.read_schema(lambda sql, params: con.execute(sql, params).fetchall())
            row = con.execute("PRAGMA quick_check").fetchone() if check else ("ok",)
        finally:
            con.close()
    except sqlite3.Error as e:
        raise explain(e, path) from None
    if row is None or row[0] != "ok":
        raise StoreError(f"database {path} is corrupt ({row[0] if row else 'no answer'})")
    reason = schema.problem(state)
    if reason:
        raise StoreError(f"database {path} cannot be used: {reason}; choose another --db")
    return state


def empty_engine():
    """An in-memory store with msda's tables and no rows: what a reader sees of a missing database."""
    engine = create_engine("sqlite://", poolclass=StaticPool, creator=lambda: _connect(":memory:"))
    SQLModel.metadata.create_all(engine)
    return engine


def make_engine(db_path: Path | str | None = None, create: bool = True, read_only: bool = False):
    """A SQLAlchemy engine on `db_path` at msda's schema; StoreError (one line) on a bad path or file.

    create=False: a missing database is an error. read_only=True: nothing is ever written; a
    missing (or table-less) database reads as empty when create is True.
    """
    explicit = db_path is not None or "MSDA_DB" in os.environ
    path = Path(db_path) if db_path is not None else default_db_path()
    try:
        parent = path.resolve().parent
        if not parent.is_dir() and (explicit or not create):
            raise StoreError(f"database directory {parent} does not exist; create it or choose another --db")
        exists = path.is_file() and path.stat().st_size > 0
        if path.exists() and not path.is_file():
            raise StoreError(f"database {path} is not a file; choose another --db")
    except OSError as e:  # a folder on the way that this user may not enter
        raise StoreError(f"database {path} cannot be reached ({e.strerror}); choose another --db") from None
    if not exists and not create:
        raise StoreError(f"no results database at {path}; train a run first or pass --db")
    if read_only:
        if not exists:
            return empty_engine()
        uri = _read_only_uri(path)
        state = _inspect(uri, path, check=False)
        if not state.columns:
            return empty_engine()
        if schema.needs_upgrade(state):
            raise StoreError(f"database {path} has the tables of an older msda (schema {state.version}); "
                             "any writing command (msda train, msda eval) upgrades it")
        engine = create_engine("sqlite://", poolclass=QueuePool, creator=lambda: _connect(uri, uri=True))
        event.listen(engine, "connect", _set_busy_timeout)
        return engine
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StoreError(f"database {path} is not writable; choose another --db")
    state = _inspect(_read_only_uri(path), path, check=True) if exists else None
    engine = create_engine("sqlite://", poolclass=QueuePool, creator=lambda: _connect(str(path)))
    event.listen(engine, "connect", _set_pragmas)
    if state is None or schema.needs_upgrade(state):
        _upgrade(engine, path)
    return engine


def _upgrade(engine, path: Path) -> None:
    """Create or migrate the schema in one write transaction, after reading it again inside it."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            con.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                state = schema.read_schema(lambda sql, params: con.exec_driver_sql(sql, params).fetchall())
                reason = schema.problem(state)
                if reason:
                    raise StoreError(f"database {path} cannot be used: {reason}; choose another --db")
                if schema.needs_upgrade(state):
                    schema.upgrade(con, state)
                con.exec_driver_sql("COMMIT")
            except BaseException:
                if con.connection.dbapi_connection.in_transaction:
                    con.exec_driver_sql("ROLLBACK")
                raise
    except DBAPIError as e:
        raise explain(e, path) from None
