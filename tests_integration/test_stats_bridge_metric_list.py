"""The bridge's embedded copy of Airflow's metric list matches the installed Airflow.

It lives here, not in the package's tests: mlwf-stats-bridge does not depend on Airflow, so its
own isolated test environment has no Airflow to compare with.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from airflow._shared.observability.metrics import metrics_registry
from mlwf_stats_bridge import AIRFLOW_METRICS


def test_embedded_list_matches_installed_airflow_registry() -> None:
    """Every metric of the installed Airflow's registry, with type and legacy name, is in the bridge's list."""
    installed = yaml.safe_load(Path(metrics_registry.YAML_REGISTRY_PATH).read_text())["metrics"]
    assert [(m["name"], m["type"], m.get("legacy_name", "-")) for m in installed] == list(
        AIRFLOW_METRICS
    )
