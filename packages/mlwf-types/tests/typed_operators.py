"""Typed operators shared by the tests (a module, so DAG files under test can import them)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

from airflow.sdk import BaseOperator
from mlwf_types import typed


class Metrics(TypedDict):
    accuracy: float
    loss: float


@dataclasses.dataclass
class ModelRef:
    uri: str
    version: int


@typed(outputs={"return_value": str, "metrics": dict[str, float]})
class TrainOperator(BaseOperator):
    """Pushes a model URI as its return value and metrics under the key ``metrics``."""

    def __init__(self, *, epochs: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epochs = epochs

    def execute(self, context: Any) -> Any:
        context["ti"].xcom_push(key="metrics", value={"accuracy": 0.9})
        return "file:///models/1"


@typed(inputs={"model_uri": str, "threshold": float}, outputs={"return_value": bool})
class ValidateOperator(BaseOperator):
    """Consumes a model URI (templated) and a float threshold (not templated)."""

    template_fields = ("model_uri",)

    def __init__(self, *, model_uri: Any, threshold: Any = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_uri = model_uri
        self.threshold = threshold

    def execute(self, context: Any) -> Any:
        return True


@typed(inputs={"count": int}, outputs={"return_value": int})
class CountOperator(BaseOperator):
    """Consumes an int, returns an int."""

    template_fields = ("count",)

    def __init__(self, *, count: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = count

    def execute(self, context: Any) -> Any:
        return self.count


@typed(inputs={"items": list[int], "options": dict[str, float], "pair": tuple[int, str]})
class BatchOperator(BaseOperator):
    """Consumes containers, all templated."""

    template_fields = ("items", "options", "pair")

    def __init__(
        self, *, items: Any = (), options: Any = None, pair: Any = (0, ""), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.items = list(items)
        self.options = options or {}
        self.pair = pair

    def execute(self, context: Any) -> Any:
        return None


class UntypedOperator(BaseOperator):
    """No declarations: neither its inputs nor its outputs are checked."""

    template_fields = ("value",)

    def __init__(self, *, value: Any = None, hidden: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value
        self.hidden = hidden

    def execute(self, context: Any) -> Any:
        return 42
