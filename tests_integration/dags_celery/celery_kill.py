"""One task that runs long on its first try, so a test can kill its worker meanwhile.

The task appends ``<try> <worker> started`` to ``<marker_dir>/log``; the first try then sleeps
``sleep`` seconds, later tries end at once and append ``<try> <worker> done``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from _worker import worker_name
from airflow.sdk import DAG, Param, get_current_context, task

with DAG(
    "celery_kill",
    schedule=None,
    catchup=False,
    params={"marker_dir": Param("", type="string"), "sleep": Param(300, type="integer")},
    tags=["mlwf-test"],
):

    @task(retries=2, retry_delay=timedelta(seconds=0))
    def long_first_try() -> str:
        ctx = get_current_context()
        ti = ctx["ti"]
        log = Path(ctx["params"]["marker_dir"]) / "log"
        worker = worker_name()
        with open(log, "a") as out:
            out.write(f"{ti.try_number} {worker} started\n")
        if ti.try_number == 1:
            time.sleep(int(ctx["params"]["sleep"]))
        with open(log, "a") as out:
            out.write(f"{ti.try_number} {worker} done\n")
        return worker

    long_first_try()
