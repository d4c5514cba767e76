"""A real team instance for the Celery benchmarks, from a spec: ``Instance(spec, home=…)``.

Used by ``celery_broker/run.py`` and ``instance_footprint/run.py``. The metadata database is a
throwaway PostgreSQL database; the broker is that database (kombu's SQLAlchemy transport, the
spec's default), Redis, or none (LocalExecutor with as many task slots).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from mlwf_instance import Instance, parse_spec
from mlwf_testsupport import free_port, throwaway_database

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "tests_integration" / "dags_celery"
WORKERS = 2
CONCURRENCY = 8


@contextmanager
def instance(
    broker: str, *, hint: str, redis_prefix: str = "", concurrency: int = CONCURRENCY
) -> Iterator[Instance]:
    """Start an instance; ``broker`` is "database", a redis:// URL, or "local" (LocalExecutor).

    ``concurrency`` is each Celery worker's task slots (LocalExecutor: WORKERS x that many).
    """
    with throwaway_database("postgresql", hint) as url:
        airflow_config: dict[str, dict[str, str]] = {
            "core": {"max_active_tasks_per_dag": "64"},
            "dag_processor": {"refresh_interval": "10"},
        }
        spec: dict[str, Any] = {
            "name": hint.replace("_", "-"),
            "database": {"url": url.replace("+psycopg", "")},
            "dag_folders": [str(DAGS)],
            "api": {"port": free_port()},
            "airflow_config": airflow_config,
        }
        if broker == "local":
            spec["executor"] = "local"
            # LocalExecutor pre-forks [core] parallelism workers: the same slots as Celery's.
            airflow_config["core"]["parallelism"] = str(WORKERS * concurrency)
        else:
            spec["executor"] = "celery"
            spec["celery"] = {"broker": broker, "workers": WORKERS, "concurrency": concurrency}
            if redis_prefix:
                airflow_config["celery_broker_transport_options"] = {
                    "global_keyprefix": redis_prefix
                }
        home = Path(tempfile.mkdtemp(prefix=f"mlwf-bench-{hint}-"))
        inst = Instance(parse_spec(spec), home=home)
        inst.start()
        try:
            inst.wait_healthy(timeout=600)
            yield inst
        finally:
            inst.stop()


class Api:
    """The few REST calls the benchmarks make."""

    def __init__(self, inst: Instance) -> None:
        self.client = httpx.Client(
            base_url=f"{inst.url}/api/v2",
            headers={"Authorization": f"Bearer {inst.api_token()}"},
            timeout=60,
        )

    def ready(self, dag_id: str) -> None:
        deadline = time.monotonic() + 600
        while self.client.get(f"/dags/{dag_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAG {dag_id} not parsed after 600 s")
            time.sleep(1)
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def run(self, dag_id: str, conf: dict[str, Any], timeout: float = 1800) -> str:
        """Trigger a run, wait for success and return its run id."""
        response = self.client.post(
            f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        response.raise_for_status()
        run_id = str(response.json()["dag_run_id"])
        start = time.monotonic()
        state = "queued"
        while True:
            # An API server slow to answer on a saturated machine: ask again.
            with suppress(httpx.TransportError):
                state = self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            if state == "success":
                return run_id
            if state == "failed" or time.monotonic() - start > timeout:
                raise RuntimeError(f"run {run_id} of {dag_id} ended {state}")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.client.get(
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(out)},
            ).json()
            out += page["task_instances"]
            if len(out) >= page["total_entries"] or not page["task_instances"]:
                return out
