"""Two chained tasks passing an XCom: the smallest DAG that needs a working broker and workers."""

from __future__ import annotations

from airflow.sdk import DAG, task

with DAG("celery_smoke", schedule=None, catchup=False, tags=["mlwf-test"]):

    @task
    def produce() -> int:
        return 41

    @task
    def consume(value: int) -> int:
        return value + 1

    consume(produce())
