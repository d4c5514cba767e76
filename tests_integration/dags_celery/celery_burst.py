"""A burst of mapped no-op tasks whose side effects show how often each one ran.

Every task instance creates ``<marker_dir>/<dag>__<run>__<task>__<map_index>`` with O_EXCL (a
second run of the same task instance fails on it) and appends ``<name> <try> <worker>`` to
``<marker_dir>/log`` (one line per execution, whatever its outcome).
"""

from __future__ import annotations

import os
from pathlib import Path

from _worker import worker_name
from airflow.sdk import DAG, Param, get_current_context, task

with DAG(
    "celery_burst",
    schedule=None,
    catchup=False,
    max_active_tasks=64,
    params={"marker_dir": Param("", type="string"), "n": Param(200, type="integer")},
    tags=["mlwf-test"],
):

    @task
    def indices(**context: object) -> list[int]:
        return list(range(int(context["params"]["n"])))  # type: ignore[index]

    @task
    def touch(index: int) -> None:
        ctx = get_current_context()
        ti = ctx["ti"]
        folder = Path(ctx["params"]["marker_dir"])
        name = f"{ti.dag_id}__{ti.run_id}__{ti.task_id}__{ti.map_index}"
        worker = worker_name()
        with open(folder / "log", "a") as log:
            log.write(f"{name} {ti.try_number} {worker}\n")
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)

    touch.expand(index=indices())
