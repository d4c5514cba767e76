"""``TuningConstructor``: a tuning DAG as a constructor instance (created through the API, UI or CLI).

Its parameters are data only: the reference of the constructor to tune (found like every
constructor, through the entry point group ``mlwf.constructors`` or opted-in bundle modules),
the experiment DAG (an instance of that constructor), the spec as JSON and the base ``conf``
as JSON. The tuning DAG is ``HyperparameterTuner(...).build_dag``'s; the values are fixed per
instance (a run's ``conf`` does not change the spec).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow.sdk import DAG, Param
from mlwf_constructors import DagConstructor, Parameter, discover
from pydantic import ValidationError

from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._tuner import HyperparameterTuner, TuningDefinitionError


def _registered(reference: str) -> type[DagConstructor]:
    from airflow.configuration import conf

    modules = conf.get("mlwf_constructors", "bundle_modules", fallback="") or ""
    found = discover(modules.split(","), conf.get("core", "dags_folder", fallback=None))
    if reference not in found:
        raise TuningDefinitionError(
            f"constructor {reference!r} to tune is not registered (known: {', '.join(sorted(found))})"
        )
    return found[reference].cls


class TuningConstructor(DagConstructor):
    """Build a hyperparameter tuning DAG over an instance of a registered constructor."""

    name = "hyperparameter_tuning"
    version = "1.0.0"
    description = "Tune the hyperparameters of a constructor instance (grid, random, Bayesian)."
    parameters = (
        Parameter("constructor", str, description="reference of the constructor to tune"),
        Parameter(
            "instance_id",
            str,
            default="",
            pattern=r"[A-Za-z0-9_.-]{0,200}",
            description="an existing instance of that constructor to run the experiments on; "
            "empty (the default): the tuning's own experiment DAG, <tuning id>__experiments",
        ),
        Parameter("spec", str, max_length=100_000, description="HyperparameterTuningSpec as JSON"),
        Parameter("base_conf", str, default="{}", description="conf of every experiment, as JSON"),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Resolve the constructor, parse the spec and return the tuner's DAG."""
        where = f"tuning instance {dag_id!r}"
        try:
            spec = HyperparameterTuningSpec.model_validate_json(values["spec"])
        except ValidationError as err:
            raise TuningDefinitionError(f"{where}: parameter 'spec' is invalid: {err}") from None
        try:
            base = json.loads(values["base_conf"])
        except json.JSONDecodeError as err:
            raise TuningDefinitionError(
                f"{where}: parameter 'base_conf' is not JSON: {err}"
            ) from None
        if not isinstance(base, dict):
            raise TuningDefinitionError(f"{where}: parameter 'base_conf' must be a JSON object")
        target = _registered(values["constructor"])()
        tuner = HyperparameterTuner(
            target, spec, instance_id=values["instance_id"] or None, base_conf=base
        )
        return tuner.build_dag(dag_id, params=params)
