"""A real PostgreSQL server for the whole test session, a fresh database per test, and `db_url`: the
store tests' database on either backend (SQLite file, PostgreSQL URL).

The server (PostgreSQL's own initdb and pg_ctl; .ci/run installs them and makes their absence a
failure, not a skip) runs as the `postgres` user
when the tests run as root (the server refuses root), listens on a unix socket in a temporary
folder (role `postgres`, trust) and on 127.0.0.1 at a free port (role PASSWORD_ROLE, scram-sha-256
with PASSWORD), and is stopped when the session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from msda_cli.engine.parallel import free_port

PASSWORD_ROLE, PASSWORD = "msda_pw", "Secr3t-pw-9f2c"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or [shutil.which("pg_ctl")]
    return Path(found[-1]).parent if found[-1] else None


@dataclass
class PgServer:
    socket_dir: Path
    port: int

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    def password_url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql+psycopg://{PASSWORD_ROLE}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as con:
            for statement in statements:
                con.execute(statement)

    def new_database(self, owner: str = "postgres") -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name} OWNER {owner}")
        return name


@pytest.fixture(scope="session")
def pg_server():
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("MSDA_TEST_POSTGRES") == "required":  # set by .ci/run, which installs the server
            pytest.fail("MSDA_TEST_POSTGRES=required but no PostgreSQL server binaries were found")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine: .ci/run installs Debian's "
                    "postgresql package; elsewhere install it to run the PostgreSQL tests")
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="msda-pg-"))
    home.chmod(0o755)
    data, sock, port = home / "data", home / "sock", free_port()
    for folder in (data, sock):
        folder.mkdir()
    for folder in (home, data, sock) if as_server else ():
        shutil.chown(folder, "postgres", "postgres")
    run = dict(check=True, capture_output=True, text=True)
    subprocess.run([*as_server, bindir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
                    "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"], **run)
    options = (f"-k {sock} -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=200")
    try:
        subprocess.run([*as_server, bindir / "pg_ctl", "-D", data, "-l", home / "server.log", "-o", options,
                        "-w", "-t", "60", "start"], **run)
    except subprocess.CalledProcessError as e:
        log = (home / "server.log").read_text() if (home / "server.log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {e.stderr}{log[-2000:]}") from None
    server = PgServer(sock, port)
    try:
        server.admin(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        subprocess.run([*as_server, bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a fresh, empty database on the session's server (over its unix socket)."""
    return pg_server.url(pg_server.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, isolated_results, monkeypatch) -> str:
    """The store's --db on each backend (also in MSDA_DB): a SQLite path, or a fresh PostgreSQL database."""
    db = str(isolated_results / "msda.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("MSDA_DB", db)
    return db


def query_db(db: str, sql: str, **params) -> list[tuple]:
    """The rows of `sql` (named :params) on a --db of either backend, read outside msda."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db if "://" in db else f"sqlite:///{db}")
    try:
        with engine.connect() as con:
            return [tuple(row) for row in con.execute(text(sql), params)]
    finally:
        engine.dispose()
