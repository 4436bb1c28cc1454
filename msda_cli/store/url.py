"""What `--db` / `MSDA_DB` names: a SQLite file (a path) or a PostgreSQL database (a SQLAlchemy URL).

A value with `://` is a URL, parsed by SQLAlchemy's `make_url`: `postgresql+psycopg://user:pw@host:5432/msda`,
or over a unix socket `postgresql+psycopg://user@/msda?host=/run/postgresql` (`postgresql://` means the same;
`sqlite:///path` is a path). Anything else is a path. A URL is only ever shown with its password hidden.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from msda_cli.errors import MsdaError

POSTGRES_DRIVER = "postgresql+psycopg"


@dataclass(frozen=True)
class Target:
    """A parsed --db: `path` for SQLite, else `url` (a PostgreSQL URL with the psycopg driver)."""

    path: Path | None = None
    url: URL | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url is None

    def shown(self) -> str:
        """The database as messages, titles and logs show it: the password hidden."""
        return str(self.path) if self.url is None else self.url.render_as_string(hide_password=True)

    def hide(self, text: str) -> str:
        """`text` with this URL's password, if it holds one, replaced by ***."""
        password = self.url.password if self.url is not None else None
        return text.replace(str(password), "***") if password else text

    def for_child(self) -> tuple[str, dict[str, str]]:
        """The --db of a child process and the environment it adds: a password goes by PGPASSWORD, never
        on a command line (which logs and `ps` show)."""
        if self.url is None:
            return str(self.path.resolve()), {}
        env = {"PGPASSWORD": str(self.url.password)} if self.url.password else {}
        u = self.url  # URL.set(password=None) would keep the password
        bare = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
        return bare.render_as_string(hide_password=False), env


def results_dir(target: Target | None = None) -> Path:
    """Where run folders live: $MSDA_RESULTS, else a SQLite database's folder, else ./results."""
    env = os.environ.get("MSDA_RESULTS")
    if env:
        return Path(env)
    if target is not None and target.path is not None:
        return target.path.resolve().parent
    return Path("results")


def parse(db: Path | str | None = None) -> Target:
    """The Target of a --db value (None: $MSDA_DB, else <results>/msda.db); MsdaError on a bad URL."""
    if isinstance(db, Target):
        return db
    if db is None:
        db = os.environ.get("MSDA_DB") or None
    if db is None:
        return Target(path=results_dir() / "msda.db")
    text = str(db)
    if "://" not in text:
        return Target(path=Path(text))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):  # the text may hold a password: it is not repeated
        raise MsdaError(f"--db {text.split('://', 1)[0]}://… is not a database URL (expected "
                        "postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE or a file path)") from None
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        if not url.database:
            raise MsdaError(f"--db {shown} names no file; give a path such as results/msda.db")
        return Target(path=Path(url.database))
    if url.get_backend_name() != "postgresql":
        raise MsdaError(f"--db {shown}: msda stores results in SQLite (a path) or PostgreSQL "
                        f"({POSTGRES_DRIVER}://…), not {url.get_backend_name()}")
    if url.drivername not in ("postgresql", POSTGRES_DRIVER):
        raise MsdaError(f"--db {shown}: the driver {url.get_driver_name()} is not supported; msda talks to "
                        f"PostgreSQL through psycopg ({POSTGRES_DRIVER}://…)")
    if not url.database:
        raise MsdaError(f"--db {shown} names no database; add /DATABASE to the URL")
    return Target(url=url.set(drivername=POSTGRES_DRIVER))
