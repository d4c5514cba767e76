"""Fixtures shared by mlwf-auth's test modules."""

from __future__ import annotations

from typing import Any

import pytest
from mlwf_testsupport import require_service


@pytest.fixture(scope="session")
def gssapi() -> Any:
    """The gssapi module (the ``kerberos`` extra), or a skip (a failure in CI)."""
    try:
        import gssapi
    except ImportError as err:
        require_service("kerberos", f"gssapi (mlwf-auth[kerberos]) is not installed: {err}")
    return gssapi
