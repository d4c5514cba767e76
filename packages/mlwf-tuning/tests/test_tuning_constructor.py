"""Issue 10 items 2 and 11: TuningConstructor names bad input per parameter and declares the DAGs it defines or uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import DagResponse
from mlwf_constructors import ParameterValidationError, RelatedDag
from mlwf_tuning import (
    Categorical,
    HyperparameterTuningSpec,
    TuningConstructor,
    TuningError,
)
from mlwf_tuning._steps import check_own_experiment_dag

GRID = HyperparameterTuningSpec(
    hyperparameters={"C": Categorical([0.1, 1.0])}, metric="accuracy", method="grid"
)
VALID = {"constructor": "train_evaluate_workflow", "spec": GRID.model_dump_json()}


def _refused(values: dict[str, Any]) -> list[ParameterValidationError]:
    """Return the errors of validate-time and of build-time, which must agree."""
    errors = []
    with pytest.raises(ParameterValidationError) as at_validate:
        TuningConstructor.validate(values)
    errors.append(at_validate.value)
    with pytest.raises(ParameterValidationError) as at_build:
        TuningConstructor().build("tune", values)
    errors.append(at_build.value)
    return errors


@pytest.mark.parametrize(
    ("values", "parameter", "reason"),
    [
        (
            {
                "spec": '{"hyperparameters": {"C": {"low": 0, "high": 1}}, "metric": "m", "n_experiments": 3}'
            },
            "spec",
            "hyperparameters.C: Unable to extract tag using discriminator 'kind'",
        ),
        ({"spec": "not json {"}, "spec", "Invalid JSON"),
        ({"spec": "[" * 2_000 + "]" * 2_000}, "spec", "not a valid tuning spec"),
        (
            {"constructor": "no_such_thing"},
            "constructor",
            "'no_such_thing' is not a registered constructor",
        ),
        ({"constructor": "hyperparameter_tuning"}, "constructor", "cannot tune tunings"),
        ({"base_conf": "{"}, "base_conf", "not JSON"),
        ({"base_conf": "[1]"}, "base_conf", "must be a JSON object; got list"),
        (
            {"base_conf": json.dumps({"max_iter": 0})},
            "base_conf",
            "constructor 'train_evaluate_workflow' refuses it: parameter 'max_iter'",
        ),
        (
            {"base_conf": json.dumps({"no_such_parameter": 1})},
            "base_conf",
            "no_such_parameter",
        ),
        (
            {
                "spec": HyperparameterTuningSpec(
                    hyperparameters={"nope": Categorical([1])}, metric="m", method="grid"
                ).model_dump_json()
            },
            "spec",
            "hyperparameter 'nope' is not a parameter of constructor 'train_evaluate_workflow'",
        ),
    ],
)
def test_bad_input_names_the_parameter_and_the_reason(
    values: dict[str, Any], parameter: str, reason: str
) -> None:
    """Issue 10 item 11: an invalid spec, base_conf or constructor is a ParameterValidationError naming it, at validate and at build time."""
    for error in _refused({**VALID, **values}):
        assert error.parameter == parameter
        assert reason in str(error)
        assert "errors.pydantic.dev" not in str(error)  # summarized, not pydantic's dump
        assert len(str(error)) < 2_000


def test_many_spec_errors_are_summarized() -> None:
    """Issue 10 item 11: a spec with many faults lists the first five and counts the rest."""
    bad = {f"h{i}": {"low": 0, "high": 1} for i in range(40)}
    spec = json.dumps({"hyperparameters": bad, "metric": "m", "n_experiments": 3})
    (error, _) = _refused({**VALID, "spec": spec})
    assert "(and 35 more)" in str(error)


@pytest.mark.parametrize("instance_id", ["tune", "tune__experiments"])
def test_the_tuning_s_own_ids_are_refused_as_instance_id(instance_id: str) -> None:
    """Issue 10 item 2: the experiments cannot be runs of the tuning itself or of its own experiment DAG id."""
    values = TuningConstructor.validate({**VALID, "instance_id": instance_id})
    with pytest.raises(ParameterValidationError) as caught:
        TuningConstructor().build("tune", values)
    assert caught.value.parameter == "instance_id"
    with pytest.raises(ParameterValidationError):
        TuningConstructor().related_dags("tune", values)


def test_related_dags_are_the_used_instance_or_the_defined_experiment_dag() -> None:
    """Issue 10 item 2: a tuning uses its target instance, or defines <id>__experiments, so the API authorizes and collision-checks it."""
    using = TuningConstructor.validate({**VALID, "instance_id": "prod_pipeline"})
    assert list(TuningConstructor().related_dags("tune", using)) == [
        RelatedDag("prod_pipeline", "uses")
    ]
    own = TuningConstructor.validate(VALID)
    assert list(TuningConstructor().related_dags("tune", own)) == [
        RelatedDag("tune__experiments", "defines")
    ]


def _dag(dag_id: str, fileloc: str, bundle: str = "dags-folder") -> DagResponse:
    return DagResponse(
        dag_id=dag_id,
        is_paused=False,
        bundle_name=bundle,
        bundle_version=None,
        relative_fileloc=fileloc,
        owners="airflow",
        tags=[],
        next_dagrun=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_an_experiment_dag_from_another_file_is_never_used() -> None:
    """Issue 10 item 2: when <id>__experiments comes from another DAG file (the id is taken), the tuning refuses to run on it."""
    tuning = _dag("tune", "mlwf_constructed/tune.py")
    check_own_experiment_dag(
        "tune/r", tuning, _dag("tune__experiments", "mlwf_constructed/tune.py")
    )
    with pytest.raises(TuningError, match=r"is defined by file 'prod\.py' of bundle 'dags-folder'"):
        check_own_experiment_dag("tune/r", tuning, _dag("tune__experiments", "prod.py"))
    with pytest.raises(TuningError, match="another DAG holds the id"):
        check_own_experiment_dag(
            "tune/r", tuning, _dag("tune__experiments", "mlwf_constructed/tune.py", "other")
        )
