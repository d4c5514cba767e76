"""Tests that need a real service: skip on a laptop without it, fail in CI.

CI sets ``MLWF_REQUIRE_SERVICES=1``: there a missing service is a broken environment, and a
silently skipped test would hide it.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

#: Environment variable that turns "service missing" from a skip into a failure.
REQUIRE_SERVICES_ENV = "MLWF_REQUIRE_SERVICES"


def services_required() -> bool:
    """Return whether missing services must fail tests (``MLWF_REQUIRE_SERVICES=1``)."""
    return os.environ.get(REQUIRE_SERVICES_ENV, "").strip().lower() in {"1", "true", "yes"}


def require_service(name: str, reason: str) -> NoReturn:
    """Skip the current test because service ``name`` is missing (``reason`` says why).

    With ``MLWF_REQUIRE_SERVICES=1`` the test fails instead.
    """
    message = f"service {name!r} unavailable: {reason}"
    if services_required():
        pytest.fail(f"{message} ({REQUIRE_SERVICES_ENV}=1, so this is a failure)", pytrace=False)
    pytest.skip(message)


def require_executable(program: str, service: str | None = None) -> str:
    """Return the path of ``program`` on PATH, or skip/fail as :func:`require_service` does."""
    path = shutil.which(program)
    if path is None:
        require_service(service or program, f"executable {program!r} not found on PATH")
    return path
