"""The store's schema version, and what opening does with a database file that is not at it.

The version is SQLite's `PRAGMA user_version` (0 for the stores of msda before it was kept); on
PostgreSQL, which has no such field, it is the one row of the table `msda_schema` (VERSION_TABLE,
not one of msda's data tables: a database without it is at version 0). A database

- without tables (new, or empty) gets msda's tables;
- with msda's tables at an older version is migrated: each version's added columns (`ADDED`) are
  added with Alembic's operations, types taken from the tables' definitions;
- with tables that are not msda's, or msda's with other columns, belongs to another program: it is
  refused and nothing is written to it;
- at a newer version is refused (this msda does not know its columns).

Creating and migrating happen in one write transaction (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
advisory lock) that reads the schema again first, so processes opening a new database at the same
moment create it exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column
from sqlmodel import SQLModel

from msda_cli.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

SCHEMA_VERSION = 3
VERSION_TABLE = "msda_schema"

# The columns each version added to a table that older versions already had.
ADDED: dict[int, dict[str, tuple[str, ...]]] = {
    1: {"run": ("pid_started", "lease")},  # run leases (owner's start time and token)
    2: {"run": ("tags", "note")},  # what a researcher writes on a run
    3: {"run": ("provenance", "slurm_job")},  # where a run came from; its Slurm job
}


@dataclass(frozen=True)
class SchemaState:
    version: int
    columns: dict[str, frozenset[str]]  # every table of the file (SQLite's own aside) -> its columns


def read_schema(execute, dialect: str = "sqlite") -> SchemaState:
    """The schema of a database; `execute(sql, params)` returns the rows (a DB-API or SQLAlchemy call)."""
    if dialect == "postgresql":
        return _read_postgres(execute)
    version = execute("PRAGMA user_version", ())[0][0]
    names = [n for (n,) in execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", ())]
    return SchemaState(version, {n: frozenset(c for (c,) in execute("SELECT name FROM pragma_table_info(?)", (n,)))
                                 for n in names})


def _read_postgres(execute) -> SchemaState:
    """The tables of the current schema (the first of the search path) from the catalog, which lists
    them whatever this role may read."""
    columns: dict[str, set[str]] = {}
    for table, column in execute(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')", ()):
        columns.setdefault(table, set()).update([column] if column else [])
    version = 0
    if VERSION_TABLE in columns:
        version = execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}", ())[0][0]
        del columns[VERSION_TABLE]
    return SchemaState(version, {name: frozenset(cols) for name, cols in columns.items()})


def _msda_columns(version: int = SCHEMA_VERSION) -> dict[str, frozenset[str]]:
    later = [ADDED[v] for v in ADDED if v > version]
    return {t.name: frozenset(c.name for c in t.columns) - {c for added in later for c in added.get(t.name, ())}
            for t in SQLModel.metadata.sorted_tables}


def problem(state: SchemaState) -> str | None:
    """Why msda must not use a database with this schema (None: it may, after `needs_upgrade`)."""
    if not state.columns:
        return None if state.version == 0 else f"it is another program's (schema version {state.version}, no tables)"
    foreign = sorted(set(state.columns) - set(_msda_columns()))
    if foreign:
        return f"it is not an msda results database (it holds the table(s) {', '.join(foreign)})"
    if state.version > SCHEMA_VERSION:
        return (f"it was written by a newer msda (schema {state.version}; this msda knows {SCHEMA_VERSION}); "
                "upgrade msda")
    then, now = _msda_columns(state.version), _msda_columns()
    for name, cols in state.columns.items():
        if not then[name] <= cols <= now[name]:
            return f"its table {name!r} does not have msda's columns; it is another program's"
    return None


def needs_upgrade(state: SchemaState) -> bool:
    return state.version != SCHEMA_VERSION or set(state.columns) != set(_msda_columns())


def upgrade(con, state: SchemaState) -> None:
    """Create the missing tables and add the missing columns on SQLAlchemy connection `con`, inside
    the caller's write transaction, and stamp SCHEMA_VERSION."""
    SQLModel.metadata.create_all(con)  # only the tables that do not exist
    missing = [(table, name) for version in range(state.version + 1, SCHEMA_VERSION + 1)
               for table, names in ADDED.get(version, {}).items() for name in names
               if table in state.columns and name not in state.columns[table]]
    if missing:  # Alembic only for a migration: a new database needs none of it
        from alembic.migration import MigrationContext
        from alembic.operations import Operations

        op = Operations(MigrationContext.configure(con))
        for table, name in missing:
            op.add_column(table, Column(name, SQLModel.metadata.tables[table].c[name].type))
    if con.dialect.name == "postgresql":
        con.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer NOT NULL)")
        con.exec_driver_sql(f"DELETE FROM {VERSION_TABLE}")
        con.exec_driver_sql(f"INSERT INTO {VERSION_TABLE} (version) VALUES ({SCHEMA_VERSION})")
    else:
        con.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
