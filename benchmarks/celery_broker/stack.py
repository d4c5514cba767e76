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
from mlwf_testsupport import AirflowApi, free_port, throwaway_database

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
        #: The REST client of the integration tests: waiting for a DAG, paging task instances.
        self.airflow = AirflowApi.for_instance(inst, timeout=60)
        self.client = self.airflow.client

    def ready(self, dag_id: str) -> None:
        """Wait until the DAG is parsed (up to 600 s), then unpause it."""
        self.airflow.unpause(dag_id, timeout=600)

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
        """Return every task instance of the run (all pages)."""
        return self.airflow.task_instances(dag_id, run_id)
