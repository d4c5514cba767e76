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
