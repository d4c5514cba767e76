"""mlwf_testsupport: service requirements, ports, leftover processes, Airflow homes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_testsupport import (
    assert_no_leftover_processes,
    free_port,
    leftover_processes,
)

NEEDS_MISSING = """
from mlwf_testsupport import require_service

def test_needs_service():
    require_service("kdc", "krb5kdc not installed")
"""


def test_missing_service_skips_with_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without MLWF_REQUIRE_SERVICES a missing service skips the test, naming it and why."""
    pytester.makepyfile(NEEDS_MISSING)
    monkeypatch.delenv("MLWF_REQUIRE_SERVICES", raising=False)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*service 'kdc' unavailable: krb5kdc not installed*"])


def test_missing_service_fails_when_services_are_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MLWF_REQUIRE_SERVICES=1 a missing service fails the test instead of skipping it."""
    pytester.makepyfile(NEEDS_MISSING)
    monkeypatch.setenv("MLWF_REQUIRE_SERVICES", "1")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MLWF_REQUIRE_SERVICES=1, so this is a failure*"])


def test_free_port_can_be_bound() -> None:
    """free_port returns a port that a server can bind right away."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))


def test_airflow_home_fixture_sets_minimal_config(airflow_home: Path) -> None:
    """The airflow_home fixture creates the home and points AIRFLOW_HOME and SQLite into it."""
    import os

    assert airflow_home.is_dir() and (airflow_home / "dags").is_dir()
    assert os.environ["AIRFLOW_HOME"] == str(airflow_home)
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(f"{airflow_home}/airflow.db")
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_leftover_processes_are_reported_and_killed(tmp_path: Path) -> None:
    """A process carrying the marker is found, reported by the assertion, and killed."""
    marker = str(tmp_path / "marker")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        assert [p.pid for p in leftover_processes(marker)] == [child.pid]
        with pytest.raises(AssertionError, match="1 process"):
            assert_no_leftover_processes(marker, timeout=0.5)
        child.wait(timeout=10)
        assert_no_leftover_processes(marker, timeout=0.5)
    finally:
        child.kill()
        child.wait()


def test_public_names_import() -> None:
    """Every name in mlwf_testsupport.__all__ imports."""
    import mlwf_testsupport

    for name in mlwf_testsupport.__all__:
        assert getattr(mlwf_testsupport, name) is not None
