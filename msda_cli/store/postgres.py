"""Opening a PostgreSQL results store (a `--db postgresql+psycopg://…` URL), and its one-line errors.

Every connection works in UTC (times come back as they were stored, in UTC), waits at most
BUSY_TIMEOUT_MS for a row lock (as SQLite's busy_timeout), and, for a reader, runs only read-only
transactions: a reading command cannot write even by mistake. Row writes need no extra locking: the
store's compare-and-set UPDATEs re-check their condition after waiting for a row (READ COMMITTED).

A writer's engine creates msda's tables in a database that has none and migrates an older schema,
inside one transaction that holds an advisory lock and reads the schema again first, so processes
opening a new database at the same moment create it exactly once. msda never creates the database
itself (that is the server administrator's `createdb`); a reader never creates anything.
"""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from msda_cli.store import schema
from msda_cli.store.db import BUSY_TIMEOUT_MS, StoreError, empty_engine
from msda_cli.store.url import Target

CONNECT_TIMEOUT_S = 10
# pg_advisory_xact_lock key of schema creation and migration: the bytes "msda".
SCHEMA_LOCK = 0x6D736461

# SQLSTATE classes and codes (PostgreSQL's appendix A) told apart in messages.
_LOCKED = ("55P03", "40P01")  # lock_not_available (lock_timeout), deadlock_detected
_READ_ONLY = "25006"  # read_only_sql_transaction
_FULL = "53100"  # disk_full
_NO_DATABASE = "3D000"  # invalid_catalog_name
_AUTH = ("28P01", "28000")  # invalid_password, invalid_authorization_specification


def explain(error: Exception, target: Target) -> StoreError:
    """One line for a database error (psycopg's, or SQLAlchemy's wrapping of it); the password hidden."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(orig, "sqlstate", None) or ""
    text = target.hide(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__)
    where = target.shown()
    if code == _NO_DATABASE or ("database" in text and "does not exist" in text):
        return StoreError(f"database {where} does not exist ({text}); create it on the server (createdb) "
                          "or choose another --db")
    if code in _AUTH or "authentication failed" in text or "password" in text:
        return StoreError(f"database {where} refused the login ({text})")
    if code in _LOCKED:
        return StoreError(f"database {where} stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s")
    if code == _READ_ONLY:
        return StoreError(f"database {where} is open read-only here ({text})")
    if code == _FULL:
        return StoreError(f"the disk of database server {where} is full ({text}); free some space and run the "
                          "command again (the database is intact)")
    if code.startswith("08") or not code and ("connection" in text or "server" in text):
        return StoreError(f"cannot reach database server {where} ({text})")
    return StoreError(f"database {where}: {text}")


def _session_settings(read_only: bool):
    def on_connect(dbapi_conn, _record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
            if read_only:
                cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_conn.commit()  # a SET inside a transaction that is rolled back would be undone

    return on_connect


def _engine(target: Target, read_only: bool):
    query = target.url.query
    connect_args = {} if "connect_timeout" in query else {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(target.url, connect_args=connect_args)
    except (ImportError, NoSuchModuleError) as e:
        raise StoreError(f"--db {target.shown()} needs the PostgreSQL driver psycopg ({e}); "
                         "pip install 'psycopg[binary]'") from None
    event.listen(engine, "connect", _session_settings(read_only))
    return engine


def _read(con) -> schema.SchemaState:
    return schema.read_schema(lambda sql, params: con.exec_driver_sql(sql, params).fetchall(), dialect="postgresql")


def make_engine(target: Target, create: bool = True, read_only: bool = False):
    """A SQLAlchemy engine on the PostgreSQL database `target` at msda's schema; StoreError (one line)
    otherwise. create=False: a database without msda's tables is an error. read_only=True: nothing is
    ever written; a database without tables reads as empty when create is True."""
    engine = _engine(target, read_only=True)
    try:
        # One read-only snapshot: the version and the tables of the same moment.
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as con:
            state = _read(con)
    except DBAPIError as e:
        engine.dispose()
        raise explain(e, target) from None
    reason = schema.problem(state)
    if reason:
        engine.dispose()
        raise StoreError(f"database {target.shown()} cannot be used: {reason}; choose another --db")
    if not state.columns and not create:
        engine.dispose()
        raise StoreError(f"database {target.shown()} holds no results yet; train a run first or pass another --db")
    if read_only:
        if not state.columns:
            engine.dispose()
            return empty_engine()
        if schema.needs_upgrade(state):
            engine.dispose()
            raise StoreError(f"database {target.shown()} has the tables of an older msda (schema {state.version}); "
                             "any writing command (msda train, msda eval) upgrades it")
        return engine
    engine.dispose()
    engine = _engine(target, read_only=False)
    if schema.needs_upgrade(state):
        _upgrade(engine, target)
    return engine


def _upgrade(engine, target: Target) -> None:
    """Create or migrate the schema in one transaction under the schema lock, after reading it again inside it."""
    try:
        with engine.begin() as con:
            con.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
            state = _read(con)
            reason = schema.problem(state)
            if reason:
                raise StoreError(f"database {target.shown()} cannot be used: {reason}; choose another --db")
            if schema.needs_upgrade(state):
                schema.upgrade(con, state)
    except DBAPIError as e:
        raise explain(e, target) from None
