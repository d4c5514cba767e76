"""mlwf-stats-bridge on a real Airflow instance, scraped by a real Prometheus server.

The package's instance (``conftest.py``) runs with the bridge as its StatsD client (``mlwf up``'s
configuration) and ``[mlwf_stats_bridge] metrics_access = edit_configuration``; its DAG folder
holds ``stats_bridge_demo`` (from ``dags_stats_bridge/``) beside the other modules' DAGs, whose
metrics the tests tell apart by their ``dag_id`` label. Prometheus scrapes the API server's
``/mlwf-stats-bridge/metrics`` as a service user ``prometheus`` (SimpleAuthManager role op) with a
long-lived JWT in a bearer token file, minted as the docs say. A ``mlwf-stats-bridge serve``
exporter serves the same directory without auth (loopback).
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlwf_instance import EmbeddedInstance, get_api_token
from mlwf_stats_bridge import dashboard, panel_queries
from mlwf_testsupport import AirflowApi, poll, require_executable, start_on_free_port

INSTANCE = "itest"
METRICS_PATH = "/mlwf-stats-bridge/metrics"
#: The docs' recipe for a long-lived token of a service user (SimpleAuthManager claims).
MINT_TOKEN = textwrap.dedent(
    """
    from airflow.api_fastapi.app import create_auth_manager
    auth_manager = create_auth_manager()
    user = auth_manager.deserialize_user({"sub": "prometheus", "role": "op"})
    print(auth_manager.generate_jwt(user, expiration_time_in_seconds=365 * 24 * 3600))
    """
)


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
def exporter(instance: EmbeddedInstance) -> Iterator[str]:
    """The ``serve`` exporter on a port it binds itself (``--port 0``); yield its ``host:port``.

    Its own port, read from the line it prints once listening: a port chosen here could be
    taken first by another xdist worker's server, which would then answer for the exporter.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlwf_stats_bridge._cli",
            "serve",
            "--port",
            "0",
            "--dir",
            str(instance.home.metrics_dir),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        address = _served_address(process, timeout=30)
        assert answers(f"http://{address}/metrics")
        yield address
    finally:
        _stop(process)
        assert process.stdout is not None
        process.stdout.close()


def _served_address(process: subprocess.Popen[bytes], timeout: float) -> str:
    """Return ``host:port`` from the exporter's "serving DIR at http://HOST:PORT/metrics" line."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = process.stdout.readline().decode()
                if match := re.search(r" at http://([^/\s]+)/metrics$", line.strip()):
                    return match.group(1)
                if not line:  # end of output: the exporter exited
                    break
            elif process.poll() is not None:
                break
    process.poll()
    raise AssertionError(
        f"the exporter printed no serving address in {timeout:g} s (exit code {process.returncode})"
    )


@pytest.fixture(scope="module")
def token_file(instance: EmbeddedInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mint a year-long JWT for the ``prometheus`` service user with the instance's configuration."""
    # Only the instance's airflow.cfg configures this process: no AIRFLOW__* of the test session.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(airflow_env(instance))
    minted = subprocess.run(
        [sys.executable, "-c", MINT_TOKEN],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    path = tmp_path_factory.mktemp("prometheus-token") / "token"
    path.write_text(minted.stdout.strip().splitlines()[-1])
    path.chmod(0o600)
    return path


def airflow_env(instance: EmbeddedInstance) -> dict[str, str]:
    """Return an environment that loads the instance's airflow.cfg (its JWT secret included)."""
    return {
        "AIRFLOW_HOME": str(instance.home.airflow_home),
        "AIRFLOW_CONFIG": str(instance.home.airflow_cfg),
    }


@pytest.fixture(scope="module")
def prometheus(
    instance: EmbeddedInstance, token_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    binary = require_executable("prometheus")
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    target = instance.url.removeprefix("http://")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: airflow\n    metrics_path: {METRICS_PATH}\n"
        f"    authorization:\n      type: Bearer\n      credentials_file: {token_file}\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n        labels:\n          mlwf_instance: {INSTANCE}\n"
        # The same target without credentials: it must not be scrapable.
        f"  - job_name: anonymous\n    metrics_path: {METRICS_PATH}\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    log_path = root / "prometheus.log"
    with log_path.open("wb") as log:  # every attempt writes here: a retry keeps the first's output

        def start(port: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        # Ready once this Prometheus listens on the port and /-/ready answers: another xdist
        # worker's server may take the port first (then a new port is tried).
        process, port = start_on_free_port(
            start,
            _stop,
            what="Prometheus",
            timeout=60,
            ready=lambda port: answers(f"http://127.0.0.1:{port}/-/ready"),
            log=log_path,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


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


def test_prometheus_scrapes_only_with_the_token(prometheus: str, finished_run: str) -> None:
    """Prometheus scrapes the API server with its bearer token file (a minted service-user JWT); without it the target is down."""

    def health() -> dict[str, tuple[str, str]]:
        response = httpx.get(f"{prometheus}/api/v1/targets", timeout=10)
        response.raise_for_status()
        return {
            t["labels"]["job"]: (t["health"], t["lastError"])
            for t in response.json()["data"]["activeTargets"]
        }

    targets = poll(
        health,
        60,
        "both targets scraped",
        1,
        until=lambda t: "unknown" not in {h for h, _ in t.values()},
    )
    assert targets["airflow"] == ("up", ""), targets
    assert targets["anonymous"][0] == "down" and "401" in targets["anonymous"][1], targets


def test_plugin_route_checks_the_user(instance: EmbeddedInstance, finished_run: str) -> None:
    """Issue 10 item 10: the API server's metrics route answers 401 without a token, 403 to a viewer, metrics to op and admin."""
    url = f"{instance.url}{METRICS_PATH}"
    assert httpx.get(url, timeout=30).status_code == 401
    viewer = get_api_token(
        instance.url, "viewer", instance.home.read_credentials("viewer").password
    )
    refused = httpx.get(url, headers={"Authorization": f"Bearer {viewer}"}, timeout=30)
    assert refused.status_code == 403 and "edit_configuration" in refused.text
    assert "airflow_" not in refused.text
    for token in (
        instance.api_token(),
        get_api_token(
            instance.url, "prometheus", instance.home.read_credentials("prometheus").password
        ),
    ):
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200
        assert 'airflow_ti_finish_total{dag_id="stats_bridge_demo"' in response.text
        assert "scheduler_heartbeat_total" in response.text


def test_plugin_serves_no_docs(instance: EmbeddedInstance) -> None:
    """Issue 10 item 10: the plugin's /docs, /redoc and /openapi.json are not served, even to the admin."""
    headers = {"Authorization": f"Bearer {instance.api_token()}"}
    for path in ("/docs", "/redoc", "/openapi.json"):
        url = f"{instance.url}/mlwf-stats-bridge{path}"
        assert httpx.get(url, timeout=30).status_code == 404, path
        assert httpx.get(url, headers=headers, timeout=30).status_code == 404, path


def test_exporter_serves_the_same_directory(exporter: str, finished_run: str) -> None:
    """The standalone `mlwf-stats-bridge serve` exporter serves the instance's metrics on loopback."""
    text = httpx.get(f"http://{exporter}/metrics", timeout=30).text
    assert 'airflow_ti_finish_total{dag_id="stats_bridge_demo"' in text
