"""A DAG with one succeeding and one failing task: both outcomes show up in the metrics."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="stats_bridge_demo", schedule=None, catchup=False)
def stats_bridge_demo() -> None:
    @task(retries=0)
    def ok() -> int:
        return 1

    @task(retries=0)
    def boom() -> None:
        raise RuntimeError("this task fails on purpose")

    ok()
    boom()


stats_bridge_demo()
