"""Fixtures shared by the tests of mlwf-tuning: a throwaway PostgreSQL database per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlwf_testsupport import throwaway_database


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Testsupport's throwaway PostgreSQL database, shared by a module's tests (one per test is slow)."""
    with throwaway_database("postgresql", "tuning") as url:
        yield url
