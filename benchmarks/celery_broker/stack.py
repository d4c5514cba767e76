"""A real instance for the Celery benchmarks: EmbeddedInstance + extra_config + Celery workers.

Used by ``celery_broker/run.py`` and ``instance_footprint/run.py``. The metadata database is a
throwaway PostgreSQL database; the broker is that database (kombu's SQLAlchemy transport),
Redis, or none (LocalExecutor).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from mlwf_instance import EmbeddedInstance
from mlwf_instance._celery import RECOVERY_OPTIONS, database_broker_url
from mlwf_instance._instance import airflow_command
from mlwf_testsupport import free_port, throwaway_database

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "tests_integration" / "dags_celery"
WORKERS = 2
CONCURRENCY = 8


@contextmanager
def instance(broker: str, *, hint: str, redis_prefix: str = "") -> Iterator[EmbeddedInstance]:
    """Start an instance; ``broker`` is "database", a redis:// URL, or "local" (LocalExecutor)."""
    with throwaway_database("postgresql", hint) as url:
        # mlwf's Celery defaults (retry, execution API timeout) on both arms alike.
        extra: dict[str, dict[str, str]] = {k: dict(v) for k, v in RECOVERY_OPTIONS.items()}
        extra["database"] = {"sql_alchemy_conn": url}
        extra["core"]["max_active_tasks_per_dag"] = "64"
        if broker != "local":
            extra["core"]["executor"] = "CeleryExecutor"
            extra["celery"] = {
                "broker_url": database_broker_url(url) if broker == "database" else broker,
                "celery_config_options": "mlwf_instance._celery_config.CELERY_CONFIG",
                "worker_concurrency": str(CONCURRENCY),
            }
            if redis_prefix:
                extra["celery_broker_transport_options"] = {"global_keyprefix": redis_prefix}
        # LocalExecutor: parallelism = its pre-forked workers; the same task slots as Celery's.
        slots = WORKERS * CONCURRENCY
        home = Path(tempfile.mkdtemp(prefix=f"mlwf-bench-{hint}-"))
        inst = EmbeddedInstance(
            home, dags_folder=DAGS, port=free_port(), parallelism=slots, extra_config=extra
        )
        inst.start()
        try:
            if broker != "local":
                env = inst.config.environment(inst.home.load_or_create_secrets())
                for number in range(1, WORKERS + 1):
                    name = f"worker-{number}"
                    inst.supervisor.spawn(
                        name,
                        airflow_command(
                            "celery",
                            "worker",
                            "--celery-hostname",
                            f"{name}@%h",
                            "--skip-serve-logs",
                        ),
                        env={**env, "MLWF_WORKER_NAME": name},
                        log_path=inst.home.log_file(name),
                        cwd=inst.home.root,
                    )
            inst.wait_healthy(timeout=600)
            yield inst
        finally:
            inst.stop()


class Api:
    """The few REST calls the benchmarks make."""

    def __init__(self, inst: EmbeddedInstance) -> None:
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
        while True:
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
