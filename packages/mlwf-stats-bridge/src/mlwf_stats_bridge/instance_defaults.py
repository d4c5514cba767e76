"""This package's defaults on an mlwf instance (entry point group ``mlwf.instance.defaults``).

With the instance's ``metrics.enabled``: Airflow's StatsD metrics go to
:class:`~mlwf_stats_bridge.PrometheusStatsClient` (``[metrics] statsd_custom_client_path``),
which writes them as Prometheus multiprocess files into the instance's private metrics folder
(``PROMETHEUS_MULTIPROC_DIR``); the API server serves them at ``/mlwf-stats-bridge/metrics``.
On a team instance (server database) only users who may edit the configuration read them
(``[mlwf_stats_bridge] metrics_access = edit_configuration``): metrics name every DAG and task
of the deployment. Imports nothing: mlwf-instance calls :func:`instance_defaults` with a
read-only context (see docs/mlwf-instance/defaults.md).
"""

from __future__ import annotations

from typing import Any


def instance_defaults(context: Any) -> dict[str, dict[str, Any]]:
    """Return the metrics options and environment of the instance described by ``context``."""
    if not context.metrics_enabled:
        return {}
    config: dict[str, dict[str, str]] = {
        "metrics": {
            "statsd_on": "True",
            "statsd_custom_client_path": "mlwf_stats_bridge.PrometheusStatsClient",
        }
    }
    if context.team:
        config["mlwf_stats_bridge"] = {"metrics_access": "edit_configuration"}
    return {
        "airflow_config": config,
        "environment": {"PROMETHEUS_MULTIPROC_DIR": str(context.metrics_dir)},
    }
