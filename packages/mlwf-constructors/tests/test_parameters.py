"""Parameters: validation errors name the parameter; schemas match the declared types."""

from __future__ import annotations

from typing import Literal

import pytest
from mlwf_constructors import ConstructorDefinitionError, Parameter, ParameterValidationError
from sample_constructors import Sample


def test_defaults_fill_in_and_values_pass() -> None:
    """Valid values pass and omitted parameters take their defaults."""
    values = Sample.validate({"epochs": 3, "tags": ["a"], "weights": {"x": 1}})
    assert values == {
        "rate": 0.5,
        "epochs": 3,
        "dataset": "iris",
        "mode": "fast",
        "tags": ["a"],
        "weights": {"x": 1},
        "note": None,
    }


@pytest.mark.parametrize(
    ("values", "parameter", "text"),
    [
        ({}, "epochs", "required"),
        ({"epochs": 0}, "epochs", "must be >= 1"),
        ({"epochs": True}, "epochs", "expects int"),
        ({"epochs": "3"}, "epochs", "expects int, got '3' (str)"),
        ({"epochs": 1, "rate": 1.5}, "rate", "must be <= 1.0"),
        ({"epochs": 1, "rate": float("nan")}, "rate", "finite"),
        ({"epochs": 1, "dataset": "Iris!"}, "dataset", "must match the pattern"),
        ({"epochs": 1, "dataset": "iris\n"}, "dataset", "must match the pattern"),
        ({"epochs": 1, "mode": "medium"}, "mode", "expects Literal"),
        ({"epochs": 1, "tags": ["a", 2]}, "tags", "at [1]"),
        ({"epochs": 1, "tags": ["a"] * 4}, "tags", "length <= 3"),
        ({"epochs": 1, "weights": {"x": "1"}}, "weights", "expects dict"),
        ({"epochs": 1, "note": "x" * 5000}, "note", "limited to 4096"),
        ({"epochs": 1, "epochz": 1}, "epochz", "is not declared"),
    ],
)
def test_bad_values_name_the_parameter(
    values: dict[str, object], parameter: str, text: str
) -> None:
    """Each bad value raises ParameterValidationError naming the parameter and the problem."""
    with pytest.raises(ParameterValidationError) as info:
        Sample.validate(values)
    assert info.value.parameter == parameter
    assert text in str(info.value)


def test_schema_carries_types_constraints_and_defaults() -> None:
    """The JSON schema maps hints to JSON types, anchors patterns and lists required names."""
    schema = Sample.schema()
    props = schema["properties"]
    assert props["rate"] == {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 0.5}
    assert props["dataset"]["pattern"] == "^(?:[a-z]+)$"
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": 3,
        "default": [],
    }
    assert props["weights"]["additionalProperties"] == {"type": "number"}
    assert props["note"]["type"] == ["string", "null"]
    assert schema["required"] == ["epochs"] and schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"name": "bad name", "type": int}, "must be an identifier"),
        ({"name": "x", "type": set[int]}, "has no JSON form"),
        ({"name": "x", "type": Literal[object()]}, "Literal members"),
        ({"name": "x", "type": int, "default": "1"}, "default is invalid"),
        ({"name": "x", "type": str, "pattern": "("}, "invalid pattern"),
    ],
)
def test_bad_declarations_fail_at_definition(kwargs: dict[str, object], text: str) -> None:
    """A parameter that cannot be validated or exported is refused when declared."""
    with pytest.raises(ConstructorDefinitionError, match=text):
        Parameter(**kwargs)  # type: ignore[arg-type]


def test_a_declared_max_length_replaces_the_default_string_bound() -> None:
    """A string parameter declaring max_length above 4,096 accepts strings up to it, and nested strings keep the default bound."""
    spec = Parameter("spec", str, max_length=100_000)
    spec.validate("x" * 50_000)  # no error: within the declared bound
    with pytest.raises(ParameterValidationError, match="length <= 100000"):
        spec.validate("x" * 100_001)
    nested = Parameter("notes", list[str], max_length=10)
    with pytest.raises(ParameterValidationError, match="limited to 4096"):
        nested.validate(["x" * 5000])


# Parameters of every form json_schema writes, with every constraint that applies to each.
EVERY_FORM = (
    Parameter("n", int, minimum=0, maximum=9, description="n"),
    Parameter("x", float, minimum=0.0, maximum=1.0),
    Parameter("s", str, pattern="[a-z]+", min_length=1, max_length=5),
    Parameter("b", bool),
    Parameter("lit", Literal["a", 1, 2.5, True]),
    Parameter("items", list[dict[str, int | None]], min_length=1, max_length=2),
    Parameter("opt", str | None, max_length=3),
    Parameter("opt_list", list[int] | None),
    Parameter("union", int | str | None),
)


def _keywords(schema: object) -> set[str]:
    """Every key of every schema object in ``schema`` (nested through items/anyOf/...)."""
    if isinstance(schema, list):
        return set().union(*(_keywords(s) for s in schema))
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key in ("items", "additionalProperties", "anyOf"):
        found |= _keywords(schema.get(key))
    return found


def test_param_schemas_use_only_keywords_that_mean_the_same_in_draft7() -> None:
    """The Params declare JSON Schema draft 7 (cheaper for Airflow to check at every parse): only
    keywords whose meaning draft 7 and 2020-12 share may appear, so no verdict changes."""
    from mlwf_constructors._parameters import SAME_IN_DRAFT7_AND_2020_12

    used = set().union(*(_keywords(p.schema()) for p in EVERY_FORM))
    assert used <= SAME_IN_DRAFT7_AND_2020_12, used - SAME_IN_DRAFT7_AND_2020_12
    assert {"type", "enum", "items", "anyOf", "pattern", "maxItems", "maxLength"} <= used


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rate", 0.5),
        ("rate", 1.5),
        ("rate", "0.5"),
        ("rate", True),
        ("epochs", 1),
        ("epochs", 0),
        ("epochs", 1.5),
        ("dataset", "iris"),
        ("dataset", "Iris"),
        ("dataset", "iris\n"),
        ("mode", "fast"),
        ("mode", "medium"),
        ("tags", ["a"]),
        ("tags", ["a", 2]),
        ("tags", ["a"] * 4),
        ("weights", {"x": 1.0}),
        ("weights", {"x": "1"}),
        ("note", None),
        ("note", "text"),
        ("note", 3),
    ],
)
def test_airflow_param_gives_the_2020_12_verdict(name: str, value: object) -> None:
    """A built DAG's Param (draft 7, validated by Airflow) accepts exactly what the same schema
    accepts under the 2020-12 dialect."""
    import jsonschema
    from airflow.sdk.definitions.param import ParamValidationError

    dag = Sample().build("verdicts", {"epochs": 1})
    param = dag.params.get_param(name)
    assert param.schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    plain = {k: v for k, v in param.schema.items() if k != "$schema"}
    expected = jsonschema.Draft202012Validator(plain).is_valid(value)
    try:
        param.resolve(value)
        accepted = True
    except ParamValidationError:
        accepted = False
    assert accepted == expected
