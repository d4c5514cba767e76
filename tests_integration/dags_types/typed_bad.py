"""Two static type errors: refused by the mlwf-types policy, shown as an import error."""

from __future__ import annotations

import datetime

from airflow.sdk import dag, task
from typed_ops import CountOperator, LabelOperator


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def typed_bad() -> None:
    label = LabelOperator(task_id="label", text="x")
    CountOperator(task_id="count", count=label.output)

    @task
    def half(n: float) -> float:
        return n / 2

    half(label.output)


typed_bad()
