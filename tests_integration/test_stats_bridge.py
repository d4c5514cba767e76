"""mlwf-stats-bridge on a real Airflow instance, scraped by a real Prometheus server.

The instance runs with the bridge as its StatsD client (``mlwf up``'s configuration); a
``mlwf-stats-bridge serve`` exporter exposes every process's metrics; Prometheus scrapes it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_stats_bridge import dashboard
from mlwf_stats_bridge._dashboard import panel_queries
from mlwf_testsupport import (
    AirflowApi,
    assert_no_leftover_processes,
    free_port,
    poll,
    require_executable,
)

DAGS = Path(__file__).parent / "dags_stats_bridge"
INSTANCE = "itest"


def answers(url: str) -> bool:
    """Return whether GET ``url`` answers 200 (False while the server is not listening yet)."""
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInstance]:
    home = tmp_path_factory.mktemp("stats-instance")
    inst = EmbeddedInstance(home, dags_folder=DAGS, port=free_port(), dag_refresh_interval=5)
    with inst:
        yield inst
    assert_no_leftover_processes(str(home))


@pytest.fixture(scope="module")
def exporter(instance: EmbeddedInstance) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlwf_stats_bridge._cli",
            "serve",
            "--port",
            str(port),
            "--dir",
            str(instance.home.metrics_dir),
        ],
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        poll(lambda: answers(url), 30, "the exporter", 0.2)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_executable("prometheus")
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: airflow\n    static_configs:\n"
        f"      - targets: ['{exporter}']\n        labels:\n          mlwf_instance: {INSTANCE}\n"
    )
    port = free_port()
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: answers(f"{url}/-/ready"), 60, "Prometheus to be ready", 0.3)
        yield url
    finally:
        _stop(process)
        log.close()


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.fixture(scope="module")
def finished_run(instance: EmbeddedInstance) -> str:
    with AirflowApi.for_instance(instance, timeout=30) as api:
        api.unpause("stats_bridge_demo", timeout=120)
        run_id = api.trigger("stats_bridge_demo", unpause=False)
        return api.wait_run("stats_bridge_demo", run_id, timeout=180)


def test_task_outcomes_reach_prometheus_with_labels(prometheus: str, finished_run: str) -> None:
    """Prometheus holds airflow_ti_finish_total with dag_id, task_id and state labels for both tasks."""
    assert finished_run == "failed"
    for task_id, state in (("ok", "success"), ("boom", "failed")):
        promql = (
            f'airflow_ti_finish_total{{mlwf_instance="{INSTANCE}",dag_id="stats_bridge_demo",'
            f'task_id="{task_id}",state="{state}"}}'
        )
        result = poll(partial(query, prometheus, promql), 60, promql)
        assert [float(r["value"][1]) for r in result] == [1.0], result


def test_legacy_duplicates_are_counted_once(prometheus: str, finished_run: str) -> None:
    """The untagged twin of ti.finish is skipped (and counted as skipped), so totals are not doubled."""
    promql = f'mlwf_stats_bridge_skipped_total{{mlwf_instance="{INSTANCE}",stat="ti.finish"}}'
    skipped = poll(lambda: query(prometheus, promql), 60, promql)
    assert sum(float(r["value"][1]) for r in skipped) >= 2
    total = query(prometheus, 'sum(airflow_ti_finish_total{dag_id="stats_bridge_demo"})')
    assert float(total[0]["value"][1]) == 2.0


def test_every_dashboard_panel_query_returns_data(prometheus: str, finished_run: str) -> None:
    """Each PromQL query of the generated dashboard returns at least one series for the instance."""
    queries = panel_queries(dashboard(INSTANCE))
    poll(
        lambda: [q for q in queries if not query(prometheus, q)],
        90,
        "every dashboard panel query to return data (the last value lists those without)",
        2,
        until=lambda missing: missing == [],
    )
    other = panel_queries(dashboard("another-instance"))
    assert all(query(prometheus, q) == [] for q in other if "/" not in q and "rate" not in q)


def test_plugin_route_requires_authentication(
    instance: EmbeddedInstance, finished_run: str
) -> None:
    """The API server's /mlwf-stats-bridge/metrics answers 401 without a token and the exposition with one."""
    url = f"{instance.url}/mlwf-stats-bridge/metrics"
    assert httpx.get(url, timeout=30).status_code == 401
    response = httpx.get(
        url, headers={"Authorization": f"Bearer {instance.api_token()}"}, timeout=30
    )
    assert response.status_code == 200
    assert 'airflow_ti_finish_total{dag_id="stats_bridge_demo"' in response.text
    assert "scheduler_heartbeat_total" in response.text
