"""Request bodies of the constructors API: bounded, strict JSON objects, errors naming the field.

The shape of each body is a pydantic model (:mod:`mlwf_constructors._api_models`) that FastAPI
validates; this module bounds what FastAPI reads and parses before that (size, nesting, JSON
numbers and strings that cannot be stored) and words FastAPI's validation errors.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

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


class BoundedJsonRequest(Request):
    """A request whose body is read at most up to a limit and parsed by :func:`parse_object`.

    FastAPI reads a route's body (``body()``, then ``json()``) before it validates it against the
    route's pydantic model; this class bounds that reading (413) and refuses what Python's
    ``json`` would accept but JSON does not, or what is too deep (422).
    """

    limit: int = 65536

    async def body(self) -> bytes:
        """Return the body; 413 once it exceeds :attr:`limit` bytes (nothing more is read)."""
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                raise HTTPException(413, f"request body exceeds {self.limit} bytes")
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > self.limit:
                    raise HTTPException(413, f"request body exceeds {self.limit} bytes")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """Return the body's JSON object (422 naming the reason when it is not one)."""
        if not hasattr(self, "_json"):
            self._json = parse_object(await self.body())
        return self._json


def bounded_json_route(
    limit: Callable[[], Awaitable[int]],
    authenticate: Callable[[Request], Awaitable[object]],
) -> type[APIRoute]:
    """Return an ``APIRoute`` class whose writes are authenticated, then read as :class:`BoundedJsonRequest`.

    FastAPI reads and validates a route's body before it resolves the route's dependencies, so
    an anonymous write would be read, parsed and answered 413 or 422 before its 401. Writes are
    therefore passed to ``await authenticate(request)`` first (which raises 401 or 403), and only
    then is the body read, up to ``await limit()`` bytes. A custom route class is FastAPI's
    documented way to change how a route reads its request.
    """

    class BoundedJsonRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def bounded(request: Request) -> Response:
                if request.method not in ("POST", "PUT", "PATCH"):
                    return await handler(request)
                await authenticate(request)  # before a byte of the body is read
                bounded_request = BoundedJsonRequest(request.scope, request.receive)
                bounded_request.limit = await limit()
                return await handler(bounded_request)

            return bounded

    return BoundedJsonRoute


def validation_error_response(errors: Sequence[Any]) -> JSONResponse:
    """Answer a request FastAPI found invalid with 422 ``{"detail", "parameter"}`` naming the field."""
    messages: list[str] = []
    parameter: str | None = None
    for error in errors[:20]:
        loc = [str(part) for part in error.get("loc", ())]
        kind = error.get("type", "")
        if loc[:1] == ["body"]:
            loc = loc[1:]
        if not loc:
            if kind == "missing":  # an empty body
                messages.append("request body is not valid JSON: the body is empty")
            else:
                messages.append(f"request body: {error.get('msg', kind)}")
            continue
        name = ".".join(loc)
        parameter = parameter or loc[0][:100]
        if kind == "missing":
            messages.append(f"field {name!r} is required")
        elif kind == "extra_forbidden":
            messages.append(f"unknown field {name[:100]!r}")
        else:
            messages.append(f"field {name!r}: {error.get('msg', kind)}")
    body: dict[str, Any] = {"detail": "; ".join(messages) or "invalid request"}
    if parameter is not None:
        body["parameter"] = parameter
    return JSONResponse(body, status_code=422)
