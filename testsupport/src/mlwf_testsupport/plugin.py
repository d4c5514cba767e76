"""pytest plugin: shared fixtures, loaded in every package's test environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlwf_testsupport._airflow_home import airflow_home_env
from mlwf_testsupport._databases import throwaway_database
from mlwf_testsupport._ports import free_port


@pytest.fixture
def airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Yield a throwaway AIRFLOW_HOME, with its minimal config set in ``os.environ``."""
    home = tmp_path / "airflow-home"
    for name, value in airflow_home_env(home).items():
        monkeypatch.setenv(name, value)
    yield home


@pytest.fixture
def unused_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    return free_port()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    with throwaway_database("postgresql", request.node.name) as url:
        yield url


@pytest.fixture
def mariadb_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh MariaDB database, dropped after the test."""
    with throwaway_database("mariadb", request.node.name) as url:
        yield url
