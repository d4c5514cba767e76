"""The mlwf-operators provider as the real ``airflow`` CLI sees it (subprocess, throwaway AIRFLOW_HOME)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CONN_TYPES = {"mlwf_hdfs", "mlwf_jira", "mlwf_jenkins", "mlwf_mlflow"}


def _airflow(*args: str) -> Any:
    """Run ``airflow <args> -o json`` in the test's AIRFLOW_HOME and return the parsed output."""
    executable = shutil.which("airflow", path=os.path.dirname(sys.executable)) or "airflow"
    result = subprocess.run(
        [executable, *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, (
        f"airflow {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}"
    )
    # Log lines may precede the JSON document, which is the one line that starts with "[".
    document = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert document, f"no JSON in the output of airflow {' '.join(args)}: {result.stdout[-2000:]}"
    return json.loads(document[-1])


def test_providers_list_shows_mlwf_operators(airflow_home: Path) -> None:
    """``airflow providers list`` lists mlwf-operators with its version and description."""
    providers = {p["package_name"]: p for p in _airflow("providers", "list")}
    assert "mlwf-operators" in providers, sorted(providers)
    from importlib.metadata import version

    assert providers["mlwf-operators"]["version"] == version("mlwf-operators")
    assert "HDFS, JIRA, Jenkins and MLflow" in providers["mlwf-operators"]["description"]


def test_providers_hooks_lists_our_connection_types(airflow_home: Path) -> None:
    """``airflow providers hooks`` lists the four mlwf connection types with their hook classes."""
    hooks = {h["connection_type"]: h for h in _airflow("providers", "hooks")}
    assert set(hooks) >= CONN_TYPES, sorted(hooks)
    assert hooks["mlwf_jenkins"]["class"] == "mlwf_operators.hooks.jenkins.JenkinsHook"
    assert {hooks[t]["package_name"] for t in CONN_TYPES} == {"mlwf-operators"}


@pytest.mark.parametrize("section", ["providers widgets", "providers behaviours"])
def test_connection_form_metadata_is_listed(airflow_home: Path, section: str) -> None:
    """The connection form's extra fields and field behaviours of our types reach the CLI."""
    rows = _airflow(*section.split())
    text = json.dumps(rows)
    assert "mlwf_jira" in text and "mlwf_hdfs" in text
