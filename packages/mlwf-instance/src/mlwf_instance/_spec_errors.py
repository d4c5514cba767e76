"""Pydantic's validation errors as ``json.path: message`` lines a spec's author understands.

Pydantic's messages are written for programmers ("Extra inputs are not permitted", "String
should match pattern '^[a-z]…'"); these are rewritten here, by error type, into what is wrong
and what is expected, with "did you mean …?" for a misspelt key. No message carries the input
value: a wrong-typed password must not be echoed into a terminal or a CI log.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from mlwf_instance._errors import MlwfInstanceError

#: Error type of a validator that reports several problems at once, each with its own path:
#: ``PydanticCustomError(MULTI_ERROR, "…", {"errors": [(relative_location, message), …]})``.
MULTI_ERROR = "mlwf_spec_errors"
#: At most this many errors are listed; a file of garbage must not print ten thousand lines.
MAX_ERRORS = 50
#: A key longer than this is cut in the paths of error messages.
_MAX_SHOWN_KEY = 40

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

#: Patterns of the spec's constrained strings → what they mean, for "string_pattern_mismatch".
PATTERN_MESSAGES: dict[str, str] = {}


def describe_pattern(pattern: str, message: str) -> str:
    """Register the human message of a string pattern; return the pattern (for ``Field(pattern=)``)."""
    PATTERN_MESSAGES[pattern] = message
    return pattern


Location = tuple[int | str, ...]


class SpecError(MlwfInstanceError, ValueError):
    """A spec is invalid; :attr:`errors` holds every problem as ``(json_path, message)``."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {path or '(top level)'}: {message}" for path, message in errors)
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{source}: {count}\n{lines}")
        self.source = source
        self.errors = errors


def problems(errors: list[tuple[Location, str]]) -> PydanticCustomError:
    """Return one pydantic error carrying several problems, each at its own relative location."""
    summary = "; ".join(f"{json_path(loc) or '(here)'}: {message}" for loc, message in errors)
    return PydanticCustomError(MULTI_ERROR, summary, {"errors": errors})


def json_path(location: Location) -> str:
    """Return a location as a JSON path: ``celery.queues[1]``, ``airflow_config["a b"]``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.match(part) and len(part) <= _MAX_SHOWN_KEY:
            path += f".{part}" if path else part
        else:
            shown = part if len(part) <= _MAX_SHOWN_KEY else part[:_MAX_SHOWN_KEY] + "…"
            path += f"[{json.dumps(shown)}]"
    return path


def _is_wrapper(part: int | str) -> bool:
    """Whether a location part names a validator or union branch, not a key of the document."""
    return isinstance(part, str) and (
        part == "[key]" or ("[" in part and "]" in part and ("(" in part or "-" in part))
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """Return the pydantic model an annotation holds (through Optional, list, dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _model_at(root: type[BaseModel], location: Location) -> type[BaseModel] | None:
    """Return the model of the object at ``location`` (None inside free-form mappings)."""
    model: type[BaseModel] | None = root
    for part in location:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
    return model


def _unknown_key(root: type[BaseModel], location: Location) -> str:
    key = location[-1]
    model = _model_at(root, location[:-1])
    if model is None or not isinstance(key, str):
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (the keys here are: {', '.join(known)})"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _message(root: type[BaseModel], error: Any, location: Location, key_error: bool) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    model = _model_at(root, location)
    if key_error:
        expected = ctx.get("expected")
        return f"unknown key (expected {expected})" if expected else "not a valid key"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(root, location)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        hint = getattr(model, "JSON_FORMS", None)
        return f"must be {hint}" if hint else "must be an object ({…})"
    if kind in ("string_type", "path_type"):
        return "must be a string"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("list_type", "tuple_type"):
        return "must be a list ([…])"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "too_long":
        return f"at most {ctx['max_length']} entries allowed"
    if kind == "too_short":
        return f"needs at least {_plural(ctx['min_length'], 'entry').replace('entrys', 'entries')}"
    if kind == "string_too_long":
        return f"too long: at most {ctx['max_length']} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return PATTERN_MESSAGES.get(str(ctx.get("pattern")), "not in the expected form")
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    return message


def spec_errors(root: type[BaseModel], error: ValidationError) -> list[tuple[str, str]]:
    """Return every problem of ``error`` as ``(json_path, message)``; never an input value."""
    found: list[tuple[str, str]] = []
    for item in error.errors(include_url=False, include_input=False):
        raw: Location = tuple(item["loc"])
        key_error = bool(raw) and raw[-1] == "[key]"
        location = tuple(p for p in raw if not _is_wrapper(p))
        if item["type"] == MULTI_ERROR:
            for relative, message in (item.get("ctx") or {}).get("errors", []):
                found.append((json_path(location + tuple(relative)), message))
            continue
        found.append((json_path(location), _message(root, item, location, key_error)))
    if len(found) > MAX_ERRORS:
        hidden = len(found) - MAX_ERRORS
        found = [*found[:MAX_ERRORS], ("", f"… and {_plural(hidden, 'more error')} not shown")]
    return found
