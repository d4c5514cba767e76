"""DagConstructor.build: the DAG carries Params; wrong ids and broken constructors fail clearly."""

from __future__ import annotations

import pytest
from mlwf_constructors import (
    ConstructorDefinitionError,
    DagConstructor,
    InvalidInstanceIdError,
    Parameter,
    check_instance_id,
)
from sample_constructors import ForgetsParams, Sample


def test_build_puts_instance_values_into_params() -> None:
    """The built DAG is named after the instance and its Params default to the instance's values."""
    dag = Sample().build("team.model-v2_1", {"epochs": 4, "mode": "slow"})
    assert dag.dag_id == "team.model-v2_1"
    assert dag.params.dump()["epochs"] == 4 and dag.params.dump()["mode"] == "slow"
    assert dag.params.get_param("epochs").schema["minimum"] == 1


def test_run_time_override_is_validated_by_the_param() -> None:
    """An override outside the declared range is rejected by Airflow's Param validation."""
    dag = Sample().build("x", {"epochs": 4})
    with pytest.raises(Exception, match="less than the minimum of 1"):
        dag.params.get_param("epochs").resolve(0)


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "a b", "ü", "", ".x", "x..y", "a" * 101, "x\n", None, 3]
)
def test_unsafe_instance_ids_are_refused(bad: object) -> None:
    """Ids that could escape a folder or are not plain ASCII DAG ids raise InvalidInstanceIdError."""
    with pytest.raises(InvalidInstanceIdError):
        check_instance_id(bad)


def test_build_without_params_is_a_definition_error() -> None:
    """A constructor that forgets to pass params to DAG() is told so, with its name."""
    with pytest.raises(ConstructorDefinitionError, match=r"forgets_params.*without param"):
        ForgetsParams().build("x", {"epochs": 1})


def test_duplicate_parameter_names_are_refused() -> None:
    """Declaring a parameter name twice fails when the class is defined."""
    with pytest.raises(ConstructorDefinitionError, match="declares parameter"):

        class Twice(DagConstructor):
            name = "twice"
            parameters = (Parameter("a", int, default=1), Parameter("a", int, default=2))


@pytest.mark.parametrize(("attribute", "value"), [("version", 2), ("description", None)])
def test_version_and_description_must_be_strings(attribute: str, value: object) -> None:
    """A number or None as version or description fails at definition, not later in the API."""
    with pytest.raises(ConstructorDefinitionError, match=rf"NotText\.{attribute} must be a string"):
        type("NotText", (DagConstructor,), {"name": "not_text", attribute: value})
