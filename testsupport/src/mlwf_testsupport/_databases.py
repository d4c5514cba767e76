"""Throwaway PostgreSQL and MariaDB databases: created with a unique name, dropped afterwards.

Tests of code that must hold on a real multi-writer database (row locks, isolation levels,
DDL) use these instead of SQLite, which serializes every writer and so hides races. The
servers are the machine's own (PostgreSQL on 127.0.0.1:5432, MariaDB on 127.0.0.1:3306);
``MLWF_TEST_POSTGRES_URL`` / ``MLWF_TEST_MARIADB_URL`` point at others (an admin URL whose
user may create databases; its database part is ignored). A server that cannot be reached
skips the test, or fails it under ``MLWF_REQUIRE_SERVICES=1`` (:func:`require_service`).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL

from mlwf_testsupport._services import require_service

DatabaseKind = Literal["postgresql", "mariadb"]

#: The kinds of server :func:`throwaway_database` creates databases on.
DATABASE_KINDS: tuple[DatabaseKind, ...] = ("postgresql", "mariadb")

#: kind → (environment variable overriding the admin URL, the default admin URL).
ADMIN_URLS: dict[DatabaseKind, tuple[str, str]] = {
    # psycopg 3, spelled out: what SQLAlchemy 2.1 picks for postgresql://, but explicit for 2.0.
    "postgresql": (
        "MLWF_TEST_POSTGRES_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    ),
    # PyMySQL: pure Python, so no MySQL client library has to be built or installed.
    "mariadb": ("MLWF_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
}

_HINT = re.compile(r"[^a-z0-9_]+")


def admin_url(kind: DatabaseKind) -> URL:
    """Return the admin URL of ``kind``'s server (its environment variable, else the default)."""
    if kind not in ADMIN_URLS:
        raise ValueError(f"unknown database kind {kind!r}; expected one of {DATABASE_KINDS}")
    variable, default = ADMIN_URLS[kind]
    return sa.make_url(os.environ.get(variable) or default)


def database_name(hint: str) -> str:
    """Return a fresh database name ``mlwf_<hint>_<random>`` (lower case, at most 60 characters)."""
    cleaned = _HINT.sub("_", hint.lower()).strip("_")[:36] or "test"
    return f"mlwf_{cleaned}_{uuid.uuid4().hex[:12]}"


@contextmanager
def throwaway_database(kind: DatabaseKind, hint: str = "test") -> Iterator[str]:
    """Create a uniquely named database on ``kind``'s server, yield its URL, drop it afterwards.

    The URL carries the driver (``postgresql+psycopg://…``, ``mysql+pymysql://…``). Dropping
    ends the connections still open on the database first, so a leaked pool cannot keep it.
    """
    url = admin_url(kind)
    name = database_name(hint)
    admin_db = "postgres" if kind == "postgresql" else None
    admin = sa.create_engine(url.set(database=admin_db), isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                if kind == "postgresql":
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                else:
                    conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        except sa.exc.DBAPIError as err:
            require_service(
                kind,
                f"cannot create a database at {url.render_as_string(hide_password=True)}: "
                f"{str(err.orig).strip() or type(err.orig).__name__}",
            )
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            _drop(admin, kind, name)
    finally:
        admin.dispose()


def _drop(admin: sa.Engine, kind: DatabaseKind, name: str) -> None:
    with admin.connect() as conn:
        if kind == "postgresql":
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        # MariaDB waits for the metadata locks of open transactions: end those sessions first.
        ids = conn.execute(
            sa.text(
                "SELECT id FROM information_schema.processlist WHERE db = :name "
                "AND id <> CONNECTION_ID()"
            ),
            {"name": name},
        ).scalars()
        for session_id in list(ids):
            with suppress(sa.exc.DBAPIError):  # it may have ended by itself meanwhile
                conn.execute(sa.text(f"KILL {int(session_id)}"))
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


def database_exists(kind: DatabaseKind, name: str) -> bool:
    """Return whether database ``name`` exists on ``kind``'s server (for cleanup checks)."""
    url = admin_url(kind)
    admin = sa.create_engine(url.set(database="postgres" if kind == "postgresql" else None))
    try:
        with admin.connect() as conn:
            if kind == "postgresql":
                query = "SELECT 1 FROM pg_database WHERE datname = :name"
            else:
                query = "SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"
            return conn.execute(sa.text(query), {"name": name}).first() is not None
    finally:
        admin.dispose()
