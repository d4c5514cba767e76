"""Typed classic operators used by the integration DAGs (a helper module in the DAG folder)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from mlwf_types import typed


@typed(inputs={"count": int}, outputs={"return_value": int, "doubled": list[int]})
class CountOperator(BaseOperator):
    """Pushes ``doubled`` explicitly and returns ``count + 1``."""

    template_fields = ("count",)

    def __init__(self, *, count: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = count

    def execute(self, context: Any) -> Any:
        context["ti"].xcom_push(key="doubled", value=[self.count, self.count])
        return self.count + 1


@typed(inputs={"text": str}, outputs={"return_value": str})
class LabelOperator(BaseOperator):
    """Returns its text, or a non-str when asked to misbehave."""

    template_fields = ("text",)

    def __init__(self, *, text: Any, misbehave: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.misbehave = misbehave

    def execute(self, context: Any) -> Any:
        return 404 if self.misbehave else self.text
