"""Fixtures shared by the tests of mlwf-tuning: a throwaway PostgreSQL and MariaDB database per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlwf_testsupport import throwaway_database


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Testsupport's throwaway PostgreSQL database, shared by a module's tests (one per test is slow)."""
    with throwaway_database("postgresql", "tuning") as url:
        yield url


@pytest.fixture(scope="module")
def mariadb_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Testsupport's throwaway MariaDB database, shared by a module's tests."""
    with throwaway_database("mariadb", "tuning") as url:
        yield url


#: The server databases every SQL store test runs on, besides SQLite: (param, fixture name).
SERVER_DATABASES = {"postgresql": "postgres_url", "mariadb": "mariadb_url"}


def store_url(request: pytest.FixtureRequest, kind: str, sqlite_path: str) -> str:
    """Return the store URL of ``kind``: a SQLite file at ``sqlite_path`` or a server database."""
    if kind == "sqlite":
        return f"sqlite:///{sqlite_path}"
    return str(request.getfixturevalue(SERVER_DATABASES[kind]))
