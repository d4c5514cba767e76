"""Statically sound (a template is only a warning), but wrong at run time: the guards fail the tasks."""

from __future__ import annotations

import datetime

from airflow.sdk import dag, task
from typed_ops import CountOperator, LabelOperator


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, params={"n": "seven"})
def typed_runtime() -> None:
    # renders to the string "seven": CountOperator declares count: int
    CountOperator(task_id="templated_count", count="{{ params.n }}")
    # returns 404 although it declares return_value: str
    LabelOperator(task_id="lying_label", text="ok", misbehave=True)

    @task
    def claims_int() -> int:
        return "not an int"  # type: ignore[return-value]

    claims_int()


typed_runtime()
