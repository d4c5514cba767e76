"""A small typed TaskFlow pipeline: mlwf-types checks its XCom edges before it runs."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlwf-types"],
)
def hello_typed() -> None:
    @task
    def load_scores() -> list[float]:
        return [0.81, 0.92, 0.77]

    @task
    def best(scores: list[float]) -> float:
        return max(scores)

    @task
    def report(best_score: float, label: str = "accuracy") -> str:
        return f"best {label}: {best_score:.2f}"

    report(best(load_scores()))


hello_typed()
