"""A type-correct DAG mixing classic @typed operators, TaskFlow and mapped tasks: loads and runs."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from airflow.sdk import XComArg, dag, task
from typed_ops import CountOperator, LabelOperator


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def typed_good() -> None:
    @task
    def seed() -> int:
        return 3

    @task
    def square(n: int) -> float:
        return float(n * n)

    @task
    def spread(n: int) -> list[int]:
        return [n, n]

    @task
    def total(values: Sequence[float], doubled: list[int], label: str) -> str:
        return f"{label}: {sum(values) + sum(doubled)}"

    count = CountOperator(task_id="count", count=seed())
    squares = square.expand(n=spread(count.output))
    label = LabelOperator(task_id="label", text="sum")
    total(squares, XComArg(count, "doubled"), label.output)


typed_good()
