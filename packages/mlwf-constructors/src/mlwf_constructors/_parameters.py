"""Declared parameters: a Python type hint plus constraints, validated and exported as JSON schema.

The type vocabulary is mlwf-types' (``int``, ``float``, ``str``, ``bool``, ``list[...]``,
``dict[str, ...]``, ``Literal[...]``, ``X | None``); values are checked with
:func:`mlwf_types.find_mismatch` and then against the constraints. The same declaration becomes
an Airflow ``Param`` (JSON schema), so the trigger form and run-time overrides are validated too.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from mlwf_types import find_mismatch, type_repr

from mlwf_constructors._errors import ConstructorDefinitionError, ParameterValidationError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MISSING: Any = object()
#: The longest string accepted in any parameter value unless ``max_length`` says otherwise.
DEFAULT_MAX_STRING = 4096

#: The JSON Schema dialect each ``Param`` of a built DAG declares (its ``$schema``). Airflow
#: validates every ``Param`` with ``jsonschema.validate``, which first checks the schema against
#: its dialect's metaschema: for the default dialect (2020-12) that check takes about 0.2 ms, for
#: draft 7 about 0.04 ms, and a DAG with Params pays it 2-3 times per Param and task at every
#: parse (serialization compares and prints each task's ``ParamsDict``). :func:`json_schema`
#: writes only keywords that mean the same in both dialects (``SAME_IN_DRAFT7_AND_2020_12``;
#: a test holds it to that), so the verdicts do not change.
PARAM_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
#: The JSON Schema keywords :meth:`Parameter.schema` may write: their meaning is the same in
#: draft 7 and 2020-12 (not so ``items`` as a list, ``prefixItems``, ``$defs``, ``dependencies``).
SAME_IN_DRAFT7_AND_2020_12 = frozenset(
    {
        "type",
        "enum",
        "items",
        "additionalProperties",
        "anyOf",
        "minimum",
        "maximum",
        "pattern",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "description",
    }
)


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of a DAG constructor.

    ``type`` is a Python hint; ``default`` (optional) must satisfy the declaration; ``minimum``/
    ``maximum`` bound numbers, ``min_length``/``max_length`` bound strings and lists, ``enum``
    restricts to listed values and ``pattern`` is a regular expression a string must fully match.
    """

    name: str
    type: Any
    default: Any = _MISSING
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    enum: Sequence[Any] | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    _compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Reject an unusable declaration when the constructor class is defined."""
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConstructorDefinitionError(
                f"parameter name {self.name!r} must be an identifier of at most 64 characters"
            )
        try:
            json_schema(self.type)
        except ConstructorDefinitionError as err:
            raise ConstructorDefinitionError(f"parameter {self.name!r}: {err}") from None
        if self.pattern is not None:
            try:
                object.__setattr__(self, "_compiled", re.compile(self.pattern))
            except re.error as err:
                raise ConstructorDefinitionError(
                    f"parameter {self.name!r}: invalid pattern {self.pattern!r}: {err}"
                ) from None
        if self.has_default:
            try:
                self.validate(self.default)
            except ParameterValidationError as err:
                raise ConstructorDefinitionError(f"default is invalid: {err}") from None

    @property
    def has_default(self) -> bool:
        """Whether the parameter may be omitted."""
        return self.default is not _MISSING

    def schema(self) -> dict[str, Any]:
        """Return the JSON schema of the parameter (constraints included, no default)."""
        schema = json_schema(self.type)
        if self.description:
            schema["description"] = self.description
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            # JSON schema patterns search; validate() requires a full match: anchor them.
            ("pattern", None if self.pattern is None else f"^(?:{self.pattern})$"),
        ):
            if value is not None:
                schema[key] = value
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        length_keys = ("minItems", "maxItems") if schema.get("type") == "array" else None
        if schema.get("type") == "string" or schema.get("type") == ["string", "null"]:
            length_keys = ("minLength", "maxLength")
        if length_keys:
            if self.min_length is not None:
                schema[length_keys[0]] = self.min_length
            if self.max_length is not None:
                schema[length_keys[1]] = self.max_length
        return schema

    def validate(self, value: Any) -> None:
        """Raise ParameterValidationError (naming the parameter) unless ``value`` is acceptable."""
        mismatch = find_mismatch(value, self.type) or _bool_as_number(value, self.type)
        if mismatch is not None:
            where, bad, hint = mismatch
            at = f" at {where}" if where else ""
            raise ParameterValidationError(
                self.name,
                f"expects {type_repr(self.type)}, got {_short(bad)} ({type(bad).__name__}){at}"
                + (f", which is not {type_repr(hint)}" if where else ""),
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterValidationError(self.name, f"must be a finite number, got {value}")
        top_limit = (
            self.max_length if isinstance(value, str) and self.max_length is not None else None
        )
        _check_strings(self.name, value, top_limit=top_limit)
        if self.enum is not None and value not in self.enum:
            raise ParameterValidationError(
                self.name, f"must be one of {list(self.enum)!r}, got {_short(value)}"
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ParameterValidationError(self.name, f"must be >= {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise ParameterValidationError(self.name, f"must be <= {self.maximum}, got {value}")
        if isinstance(value, str | list):
            if self.min_length is not None and len(value) < self.min_length:
                raise ParameterValidationError(
                    self.name, f"must have length >= {self.min_length}, got {len(value)}"
                )
            if self.max_length is not None and len(value) > self.max_length:
                raise ParameterValidationError(
                    self.name, f"must have length <= {self.max_length}, got {len(value)}"
                )
        if (
            self._compiled is not None
            and isinstance(value, str)
            and not self._compiled.fullmatch(value)
        ):
            raise ParameterValidationError(
                self.name, f"must match the pattern {self.pattern!r}, got {_short(value)}"
            )


def validate_values(parameters: Sequence[Parameter], values: Any) -> dict[str, Any]:
    """Return the complete values (defaults filled in) or raise ParameterValidationError."""
    if not isinstance(values, Mapping):
        raise ParameterValidationError(
            "*", f"values must be a JSON object, got {type(values).__name__}"
        )
    declared = {p.name: p for p in parameters}
    unknown = sorted(str(k) for k in values if k not in declared)
    if unknown:
        raise ParameterValidationError(
            unknown[0], f"is not declared (declared: {', '.join(declared) or 'none'})"
        )
    complete: dict[str, Any] = {}
    for param in parameters:
        if param.name in values:
            param.validate(values[param.name])
            complete[param.name] = values[param.name]
        elif param.has_default:
            complete[param.name] = param.default
        else:
            raise ParameterValidationError(param.name, "is required and has no default")
    return complete


def json_schema(hint: Any) -> dict[str, Any]:
    """Return the JSON schema of a type hint; raise ConstructorDefinitionError if it has none."""
    simple = {int: "integer", float: "number", str: "string", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        if not all(isinstance(a, str | int | float | bool) for a in args):
            raise ConstructorDefinitionError(
                f"Literal members of {hint!r} must be str/int/float/bool"
            )
        return {"enum": list(args)}
    if origin in (list, Sequence):
        if len(args) != 1:
            raise ConstructorDefinitionError(f"{hint!r} needs one item type, e.g. list[int]")
        return {"type": "array", "items": json_schema(args[0])}
    if origin in (dict, Mapping):
        if len(args) != 2 or args[0] is not str:
            raise ConstructorDefinitionError(f"{hint!r}: only dict[str, X] is supported")
        return {"type": "object", "additionalProperties": json_schema(args[1])}
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1 and len(args) == 2:
            inner = json_schema(members[0])
            if isinstance(inner.get("type"), str):
                inner["type"] = [inner["type"], "null"]
                return inner
            return {"anyOf": [inner, {"type": "null"}]}
        return {"anyOf": [json_schema(a) for a in args]}
    if hint is type(None):
        return {"type": "null"}
    raise ConstructorDefinitionError(
        f"type {type_repr(hint)} has no JSON form; use int, float, str, bool, list[...], "
        "dict[str, ...], Literal[...] or X | None"
    )


def _bool_as_number(value: Any, hint: Any) -> tuple[str, Any, Any] | None:
    """JSON true/false must not pass as a number (Python's bool is an int)."""
    if isinstance(value, bool) and hint in (int, float):
        return ("", value, hint)
    if isinstance(value, list) and get_origin(hint) is list:
        (item,) = get_args(hint) or (Any,)
        for i, element in enumerate(value):
            found = _bool_as_number(element, item)
            if found:
                return (f"[{i}]", found[1], found[2])
    return None


def _check_strings(name: str, value: Any, depth: int = 0, top_limit: int | None = None) -> None:
    """Bound the size of every string and the nesting depth of a value.

    ``top_limit`` replaces the default bound for ``value`` itself when it is a string (the
    parameter's own ``max_length``, checked by the caller); nested strings keep the default.
    """
    if depth > 8:
        raise ParameterValidationError(name, "is nested more than 8 levels deep")
    if isinstance(value, str) and top_limit is None and len(value) > DEFAULT_MAX_STRING:
        raise ParameterValidationError(
            name, f"strings are limited to {DEFAULT_MAX_STRING} characters, got {len(value)}"
        )
    if isinstance(value, list):
        for item in value:
            _check_strings(name, item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(name, key, depth + 1)
            _check_strings(name, item, depth + 1)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
