"""The mlwf-stats-bridge command: dashboard generation and the serve exporter's argument errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlwf_stats_bridge import dashboard, panel_queries
from mlwf_stats_bridge._cli import main


def test_dashboard_command_prints_grafana_json_for_the_instance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`dashboard --instance team-a` prints a dashboard whose every query filters on team-a."""
    assert main(["dashboard", "--instance", "team-a"]) == 0
    board = json.loads(capsys.readouterr().out)
    queries = panel_queries(board)
    assert len(board["panels"]) >= 7 and queries
    assert all('mlwf_instance="team-a"' in q for q in queries)


@pytest.mark.parametrize("name", ["", "has space", 'q"uote'])
def test_dashboard_refuses_bad_instance_names(name: str) -> None:
    """An instance name that cannot sit inside a PromQL string raises ValueError naming it."""
    with pytest.raises(ValueError, match="instance name"):
        dashboard(name)


def test_serve_without_directory_fails_clearly(tmp_path: object) -> None:
    """`serve` on a missing directory exits 2 and says which directory."""
    out = subprocess.run(
        [sys.executable, "-m", "mlwf_stats_bridge._cli", "serve", "--dir", "/nonexistent/metrics"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "/nonexistent/metrics does not exist" in out.stderr
