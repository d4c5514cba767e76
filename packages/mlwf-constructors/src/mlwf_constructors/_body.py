"""Request bodies of the constructors API: bounded, strict JSON objects, errors naming the field."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request

#: Deepest nesting accepted in a request body (parameter values allow far less; this bounds the
#: parser's work and keeps a deeply nested body a 422 instead of a RecursionError).
MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and they cannot be stored as JSON.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    # Beyond 64 bits a number loses precision in databases and JSON parsers other than Python's.
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"integer {text[:40]}... is out of range (64-bit)")
    return value


def _tree_fault(value: Any, limit: int) -> str | None:
    """Return why ``value`` cannot be accepted (too deep, a string not encodable as UTF-8), or None.

    Iterative, so that no nesting can exhaust the interpreter's recursion.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                # JSON escapes can spell lone surrogates, which no file or database can store.
                return f"string {item[:40]!r} holds a lone surrogate (not UTF-8)"
        elif isinstance(item, dict | list):
            if depth > limit:
                return f"request body nests deeper than {limit} levels of arrays and objects"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def parse_object(raw: bytes) -> dict[str, Any]:
    """Return the JSON object in ``raw``; 422 naming the reason otherwise."""
    try:
        body = json.loads(
            raw,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise HTTPException(
            422, f"request body nests deeper than {MAX_DEPTH} levels of arrays and objects"
        ) from None
    except ValueError as err:  # JSONDecodeError, bad UTF-8, NaN, numbers out of range
        raise HTTPException(422, f"request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "request body must be a JSON object")
    fault = _tree_fault(body, MAX_DEPTH)
    if fault is not None:
        raise HTTPException(422, fault)
    return body


async def read_object(request: Request, limit: int) -> dict[str, Any]:
    """Read at most ``limit`` bytes of a JSON object body; 413 beyond, 422 if it is not one."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return parse_object(b"".join(chunks))


def field(body: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    """Return ``body[name]`` if it has type ``kind``; 422 naming the field otherwise."""
    if name not in body:
        if required:
            raise HTTPException(422, f"field {name!r} is required")
        return None
    value = body[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise HTTPException(422, f"field {name!r} must be a {kind.__name__}")
    return value


def only(body: dict[str, Any], allowed: set[str]) -> None:
    """Refuse (422) fields not in ``allowed``, naming them."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPException(
            422, f"unknown field(s): {', '.join(repr(u[:100]) for u in unknown[:20])}"
        )
