"""A Grafana dashboard for one instance: scheduler health, DAG runs, task failures, pools, executor.

Every query filters on the ``mlwf_instance`` label, which the Prometheus scrape config sets per
instance (see the docs). The instance name is a constant dashboard variable ``$instance``.
"""

from __future__ import annotations

import re
from typing import Any

_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
SEL = 'mlwf_instance="$instance"'

#: (title, unit, [(PromQL, legend)]) per panel.
PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Scheduler heartbeats per second",
        "ops",
        ((f"sum(rate(airflow_scheduler_heartbeat_total{{{SEL}}}[5m]))", "heartbeats/s"),),
    ),
    (
        "Scheduler loop duration (p95)",
        "s",
        (
            (
                "histogram_quantile(0.95, sum by (le) (rate("
                f"airflow_scheduler_scheduler_loop_duration_seconds_bucket{{{SEL}}}[5m])))",
                "p95",
            ),
        ),
    ),
    (
        "DAG run outcomes",
        "short",
        (
            (
                f"sum by (dag_id, state) (airflow_dagrun_duration_seconds_count{{{SEL}}})",
                "{{dag_id}} {{state}}",
            ),
        ),
    ),
    (
        "DAG run mean duration",
        "s",
        (
            (
                f"sum by (dag_id, state) (airflow_dagrun_duration_seconds_sum{{{SEL}}}) / "
                f"sum by (dag_id, state) (airflow_dagrun_duration_seconds_count{{{SEL}}})",
                "{{dag_id}} {{state}}",
            ),
        ),
    ),
    (
        "Task failures",
        "short",
        (
            (
                f'sum by (dag_id, task_id) (airflow_ti_finish_total{{{SEL},state="failed"}})',
                "{{dag_id}}.{{task_id}}",
            ),
        ),
    ),
    (
        "Pool slots",
        "short",
        (
            (f"sum by (pool_name) (airflow_pool_open_slots{{{SEL}}})", "{{pool_name}} open"),
            (f"sum by (pool_name) (airflow_pool_running_slots{{{SEL}}})", "{{pool_name}} running"),
        ),
    ),
    (
        "Executor slots",
        "short",
        (
            (f"sum by (executor) (airflow_executor_open_slots{{{SEL}}})", "{{executor}} open"),
            (
                f"sum by (executor) (airflow_executor_running_tasks{{{SEL}}})",
                "{{executor}} running",
            ),
        ),
    ),
)


def dashboard(instance: str, *, title: str | None = None) -> dict[str, Any]:
    """Return a Grafana dashboard (JSON model) for the instance whose ``mlwf_instance`` is ``instance``."""
    if not isinstance(instance, str) or not _INSTANCE_NAME.match(instance):
        raise ValueError(
            f"instance name {instance!r} must be non-empty letters, digits, '_', '.', ':' or '-'"
        )
    panels = []
    for index, (panel_title, unit, queries) in enumerate(PANELS):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": panel_title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + n),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    }
                    for n, (expr, legend) in enumerate(queries)
                ],
            }
        )
    return {
        "title": title or f"Airflow {instance}",
        "uid": f"mlwf-{re.sub(r'[^A-Za-z0-9-]', '-', instance)}"[:40],
        "tags": ["airflow", "mlwf"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
                {"name": "instance", "type": "constant", "query": instance, "hide": 2},
            ]
        },
        "panels": panels,
    }


def panel_queries(board: dict[str, Any]) -> list[str]:
    """Return every PromQL query of a dashboard with ``$instance`` substituted."""
    instance = next(v["query"] for v in board["templating"]["list"] if v["name"] == "instance")
    return [
        target["expr"].replace("$instance", instance)
        for panel in board["panels"]
        for target in panel["targets"]
    ]
