"""Fixtures shared by the tests of mlwf-tuning: a throwaway PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from mlwf_testsupport import require_service

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database on 127.0.0.1:5432, dropped after the module."""
    name = f"mlwf_tuning_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as err:
        admin.dispose()
        require_service("postgresql", f"cannot create a database at {POSTGRES}: {err}")
    yield f"{POSTGRES}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
