"""A small constructor used by the unit tests (importable as ``sample_constructors``)."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param
from mlwf_constructors import DagConstructor, Parameter, RelatedDag


class Sample(DagConstructor):
    """Two empty tasks; parameters of every supported kind."""

    name = "sample"
    version = "2.1.0"
    parameters = (
        Parameter("rate", float, default=0.5, minimum=0.0, maximum=1.0),
        Parameter("epochs", int, minimum=1),
        Parameter("dataset", str, default="iris", pattern=r"[a-z]+"),
        Parameter("mode", Literal["fast", "slow"], default="fast"),
        Parameter("tags", list[str], default=[], max_length=3),
        Parameter("weights", dict[str, float], default={}),
        Parameter("note", str | None, default=None),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        with DAG(
            dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), params=params
        ) as dag:
            EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
        return dag


class ForgetsParams(Sample):
    """Builds its DAG without the params: a definition error."""

    name = "forgets_params"

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        return DAG(dag_id, schedule=None)


class Related(DagConstructor):
    """Uses the DAG named by ``target`` and defines a second DAG, ``side`` (``<id>__side`` if empty)."""

    name = "related"
    version = "1.0.0"
    parameters = (
        Parameter("target", str, default="dev_pipeline"),
        Parameter("side", str, default=""),
        Parameter("explode", bool, default=False),
        # A file path: related_dags() waits (up to 30 s) until ``<hold>.go`` exists, after
        # touching ``<hold>.reached``; lets an API test hold a request at that step.
        Parameter("hold", str, default=""),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        if values["explode"]:
            # What a constructor's own code may do with values its parameters accept.
            raise RuntimeError("explode is not supported in this deployment")
        with DAG(
            dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), params=params
        ) as dag:
            EmptyOperator(task_id="a")
        return dag

    def related_dags(self, instance_id: str, values: Mapping[str, Any]) -> Sequence[RelatedDag]:
        if values.get("hold") and not os.path.exists(values["hold"] + ".go"):
            open(values["hold"] + ".reached", "w").close()
            deadline = time.monotonic() + 30
            while not os.path.exists(values["hold"] + ".go") and time.monotonic() < deadline:
                time.sleep(0.02)
        return (
            RelatedDag(values["target"], "uses"),
            RelatedDag(values["side"] or f"{instance_id}__side", "defines"),
        )
