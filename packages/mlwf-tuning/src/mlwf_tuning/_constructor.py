"""``TuningConstructor``: a tuning DAG as a constructor instance (created through the API, UI or CLI).

Its parameters are data only: the reference of the constructor to tune (found like every
constructor, through the entry point group ``mlwf.constructors`` or opted-in bundle modules),
the experiment DAG (an instance of that constructor), the spec as JSON and the base ``conf``
as JSON. The tuning DAG is ``HyperparameterTuner(...).build_dag``'s; the values are fixed per
instance (a run's ``conf`` does not change the spec).

The values come from untrusted users, so every fault is a ``ParameterValidationError`` naming
the parameter (``spec``, ``base_conf``, ``constructor``, ``instance_id``) and the reason, raised
by ``validate`` (what the constructors API calls first) and again by ``build_dag``: the API
answers 422, never 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import DAG, Param
from mlwf_constructors import (
    DagConstructor,
    Parameter,
    ParameterValidationError,
    RelatedDag,
    configured_bundle_modules,
    discover,
)
from pydantic import ValidationError

from mlwf_tuning._errors import TuningDefinitionError
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._tuner import EXPERIMENT_DAG_SUFFIX, HyperparameterTuner, check_spec_fits

#: How many of a spec's validation errors a message lists (a hostile spec can have thousands).
_MAX_ERRORS_SHOWN = 5


def _registered(reference: str) -> type[DagConstructor]:
    from airflow.configuration import conf

    if reference == TuningConstructor.name:
        raise ParameterValidationError(
            "constructor",
            f"{reference!r} is the tuning constructor itself; a tuning cannot tune tunings",
        )
    found = discover(configured_bundle_modules(), conf.get("core", "dags_folder", fallback=None))
    if reference not in found:
        raise ParameterValidationError(
            "constructor",
            f"{reference!r} is not a registered constructor (known: {', '.join(sorted(found))})",
        )
    return found[reference].cls


def summarize_errors(err: ValidationError) -> str:
    """Return pydantic's errors as one readable line: ``where: what`` each, the first few only."""
    errors = err.errors(include_url=False, include_input=False)
    parts = []
    for error in errors[:_MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = len(errors) - _MAX_ERRORS_SHOWN
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class _Resolved:
    """The parsed and checked values of one tuning instance."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        try:
            self.spec = HyperparameterTuningSpec.model_validate_json(values["spec"])
        except ValidationError as err:
            raise ParameterValidationError(
                "spec", f"not a valid tuning spec: {summarize_errors(err)}"
            ) from None
        except (ValueError, RecursionError) as err:  # pragma: no cover - pydantic wraps these
            raise ParameterValidationError("spec", f"not a valid tuning spec: {err}") from None
        try:
            base = json.loads(values["base_conf"])
        except (ValueError, RecursionError) as err:
            raise ParameterValidationError("base_conf", f"not JSON: {err}") from None
        if not isinstance(base, dict):
            raise ParameterValidationError(
                "base_conf", f"must be a JSON object; got {type(base).__name__}"
            )
        self.base: dict[str, Any] = base
        self.target = _registered(values["constructor"])()
        label = f"constructor {values['constructor']!r}"
        try:
            check_spec_fits(self.target, self.spec)
        except TuningDefinitionError as err:
            raise ParameterValidationError("spec", str(err)) from None
        self.instance_id: str | None = values["instance_id"] or None
        if base or self.instance_id is None:
            # The tuner's own experiment DAG is built with exactly these values.
            try:
                self.target.validate(base)
            except ParameterValidationError as err:
                raise ParameterValidationError("base_conf", f"{label} refuses it: {err}") from None


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

    @classmethod
    def validate(cls, values: Any) -> dict[str, Any]:
        """Return complete values; raise ``ParameterValidationError`` naming the parameter at fault."""
        complete = super().validate(values)
        _Resolved(complete)
        return complete

    def related_dags(self, instance_id: str, values: Mapping[str, Any]) -> Sequence[RelatedDag]:
        """Return the experiment DAG: the instance it uses (``instance_id``) or the one it defines."""
        _check_instance_id(instance_id, values["instance_id"])
        if values["instance_id"]:
            return (RelatedDag(values["instance_id"], "uses"),)
        return (RelatedDag(f"{instance_id}{EXPERIMENT_DAG_SUFFIX}", "defines"),)

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Resolve the constructor, parse the spec and return the tuner's DAG."""
        resolved = _Resolved(values)
        _check_instance_id(dag_id, values["instance_id"])
        try:
            tuner = HyperparameterTuner(
                resolved.target,
                resolved.spec,
                instance_id=resolved.instance_id,
                base_conf=resolved.base,
            )
        except TuningDefinitionError as err:  # pragma: no cover - _Resolved checked the same
            raise ParameterValidationError("spec", str(err)) from None
        return tuner.build_dag(dag_id, params=params)


def _check_instance_id(dag_id: str, experiments: str) -> None:
    own = f"{dag_id}{EXPERIMENT_DAG_SUFFIX}"
    if experiments in (dag_id, own):
        raise ParameterValidationError(
            "instance_id",
            f"{experiments!r} is the tuning's own "
            f"{'DAG' if experiments == dag_id else 'experiment DAG'}: "
            "name an instance of the tuned constructor, or leave it empty for the tuning's "
            f"own experiment DAG {own!r}",
        )
