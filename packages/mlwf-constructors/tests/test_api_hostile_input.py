"""A hostile-input corpus against the constructors API on a real Airflow API server (see conftest)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ApiServer

JSON = {"Content-Type": "application/json"}


def _create(instance_id: Any = "hostile_x", constructor: Any = "sample", **extra: Any) -> bytes:
    body = {"instance_id": instance_id, "constructor": constructor, **extra}
    return json.dumps(body).encode()


def _values(values: Any) -> bytes:
    return _create(values=values)


def _raw_values(text: str) -> bytes:
    return (
        b'{"instance_id": "hostile_x", "constructor": "sample", "values": ' + text.encode() + b"}"
    )


# (name, method, path, body, headers, expected status or None for "some 4xx", text in detail)
CASES: list[tuple[str, str, str, bytes | None, dict[str, str], int | None, str]] = [
    ("truncated json", "POST", "/instances", b"{", JSON, 422, "not valid JSON"),
    ("array body", "POST", "/instances", b"[]", JSON, 422, "JSON object"),
    ("null body", "POST", "/instances", b"null", JSON, 422, "JSON object"),
    ("string body", "POST", "/instances", b'"x"', JSON, 422, "JSON object"),
    ("empty body", "POST", "/instances", b"", JSON, 422, "not valid JSON"),
    ("NaN", "POST", "/instances", _raw_values('{"epochs": 1, "rate": NaN}'), JSON, 422, "NaN"),
    ("Infinity", "POST", "/instances", _raw_values('{"epochs": Infinity}'), JSON, 422, "Infinity"),
    ("-Infinity", "POST", "/instances", _raw_values('{"rate": -Infinity}'), JSON, 422, "Infinity"),
    (
        "1e999",
        "POST",
        "/instances",
        _raw_values('{"epochs": 1, "rate": 1e999}'),
        JSON,
        422,
        "range",
    ),
    (
        "-1e308",
        "POST",
        "/instances",
        _raw_values('{"epochs": 1, "rate": -1e308}'),
        JSON,
        422,
        "rate",
    ),
    (
        "5000-digit int",
        "POST",
        "/instances",
        _raw_values('{"epochs": ' + "9" * 5000 + "}"),
        JSON,
        422,
        "not valid JSON",
    ),
    ("id is a number", "POST", "/instances", _create(instance_id=5), JSON, 422, "instance_id"),
    ("id is null", "POST", "/instances", _create(instance_id=None), JSON, 422, "instance_id"),
    ("id is a list", "POST", "/instances", _create(instance_id=["a"]), JSON, 422, "instance_id"),
    ("id traverses", "POST", "/instances", _create(instance_id="../x"), JSON, 422, "instance id"),
    ("id unicode", "POST", "/instances", _create(instance_id="ünï"), JSON, 422, "instance id"),
    ("id NUL", "POST", "/instances", _create(instance_id="a\x00b"), JSON, 422, "instance id"),
    ("id too long", "POST", "/instances", _create(instance_id="a" * 101), JSON, 422, "instance id"),
    ("id missing", "POST", "/instances", b'{"constructor": "sample"}', JSON, 422, "instance_id"),
    ("constructor number", "POST", "/instances", _create(constructor=5), JSON, 422, "constructor"),
    ("constructor unknown", "POST", "/instances", _create(constructor="nope"), JSON, 422, "'nope'"),
    ("constructor empty", "POST", "/instances", _create(constructor=""), JSON, 422, "''"),
    ("values a list", "POST", "/instances", _values([1]), JSON, 422, "values"),
    ("values a string", "POST", "/instances", _values("epochs=1"), JSON, 422, "values"),
    ("epochs a string", "POST", "/instances", _values({"epochs": "1"}), JSON, 422, "epochs"),
    ("epochs a bool", "POST", "/instances", _values({"epochs": True}), JSON, 422, "epochs"),
    ("epochs a float", "POST", "/instances", _values({"epochs": 1.5}), JSON, 422, "epochs"),
    ("epochs missing", "POST", "/instances", _values({}), JSON, 422, "epochs"),
    (
        "rate above maximum",
        "POST",
        "/instances",
        _values({"epochs": 1, "rate": 2.0}),
        JSON,
        422,
        "rate",
    ),
    (
        "mode not allowed",
        "POST",
        "/instances",
        _values({"epochs": 1, "mode": "medium"}),
        JSON,
        422,
        "mode",
    ),
    (
        "tags of ints",
        "POST",
        "/instances",
        _values({"epochs": 1, "tags": [1, 2]}),
        JSON,
        422,
        "tags",
    ),
    (
        "too many tags",
        "POST",
        "/instances",
        _values({"epochs": 1, "tags": list("abcd")}),
        JSON,
        422,
        "tags",
    ),
    (
        "weights of strings",
        "POST",
        "/instances",
        _values({"epochs": 1, "weights": {"a": "x"}}),
        JSON,
        422,
        "weights",
    ),
    ("unknown parameter", "POST", "/instances", _values({"epochs": 1, "zzz": 1}), JSON, 422, "zzz"),
    (
        "lone surrogate",
        "POST",
        "/instances",
        _raw_values('{"epochs": 1, "note": "\\ud800"}'),
        JSON,
        422,
        "lone surrogate",
    ),
    (
        "key a lone surrogate",
        "POST",
        "/instances",
        _raw_values('{"epochs": 1, "weights": {"\\udc00": 1.0}}'),
        JSON,
        422,
        "lone surrogate",
    ),
    (
        "4000-digit int",
        "POST",
        "/instances",
        _raw_values('{"epochs": ' + "9" * 4000 + "}"),
        JSON,
        422,
        "out of range",
    ),
    (
        "int above 64 bits",
        "POST",
        "/instances",
        _raw_values('{"epochs": 9223372036854775808}'),
        JSON,
        422,
        "out of range",
    ),
    ("enabled a string", "POST", "/instances", _create(enabled="yes"), JSON, 422, "enabled"),
    ("unknown field", "POST", "/instances", _create(owner="root"), JSON, 422, "owner"),
    (
        "values nested 100",
        "POST",
        "/instances",
        _values({"epochs": 1, "weights": json.loads("[" * 100 + "]" * 100)}),
        JSON,
        422,
        "64 levels",
    ),
    (
        "arrays nested 30000",
        "POST",
        "/instances",
        b"[" * 30000 + b"]" * 30000,
        JSON,
        422,
        "64 levels",
    ),
    (
        "objects nested 6000",
        "POST",
        "/instances",
        b'{"a":' * 6000 + b"1" + b"}" * 6000,
        JSON,
        422,
        "64 levels",
    ),
    (
        "build_dag raises",
        "POST",
        "/instances",
        _create(constructor="related", values={"explode": True}),
        JSON,
        422,
        "constructor 'related' refused the values: RuntimeError: explode",
    ),
    (
        "invalid UTF-8",
        "POST",
        "/instances",
        b'{"instance_id": "\xff\xfe"}',
        JSON,
        422,
        "not valid JSON",
    ),
    (
        "latin-1 declared",
        "POST",
        "/instances",
        '{"instance_id": "é"}'.encode("latin-1"),
        {"Content-Type": "application/json; charset=latin-1"},
        422,
        "not valid JSON",
    ),
    ("too large", "POST", "/instances", _values({"tags": ["x" * 4000] * 20}), JSON, 413, "exceeds"),
    (
        "patch unknown instance",
        "PATCH",
        "/instances/no_such",
        b'{"values": {}}',
        JSON,
        404,
        "no_such",
    ),
    ("patch values a list", "PATCH", "/instances/no_such", b'{"values": []}', JSON, 422, "values"),
    (
        "patch enabled a number",
        "PATCH",
        "/instances/no_such",
        b'{"enabled": 1}',
        JSON,
        422,
        "enabled",
    ),
    (
        "patch unknown field",
        "PATCH",
        "/instances/no_such",
        b'{"constructor": "x"}',
        JSON,
        422,
        "constructor",
    ),
    ("patch bad id", "PATCH", "/instances/a..b", b"{}", JSON, 422, "instance id"),
    ("get NUL id", "GET", "/instances/a%00b", None, {}, 422, "instance id"),
    ("get slash id", "GET", "/instances/a%2Fb", None, {}, None, ""),
    ("get 5000-char id", "GET", "/instances/" + "a" * 5000, None, {}, 422, "instance id"),
    ("get unicode id", "GET", "/instances/%C3%BC", None, {}, 422, "instance id"),
    ("delete traversal", "DELETE", "/instances/..%2F..%2Fx", None, {}, None, ""),
    ("enable unknown", "POST", "/instances/no_such/enable", None, {}, 404, "no_such"),
    ("PUT not allowed", "PUT", "/instances/x", b"{}", JSON, 405, "Method Not Allowed"),
    ("GET on enable", "GET", "/instances/x/enable", None, {}, 405, "Method Not Allowed"),
    ("unknown route", "GET", "/nope", None, {}, 404, "Not Found"),
    ("unknown action", "POST", "/instances/x/explode", None, {}, 404, "Not Found"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "detail"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_request_gets_a_4xx_naming_the_fault(
    api_server: ApiServer,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int | None,
    detail: str,
) -> None:
    """Issue 10 item 11: each hostile request gets a 4xx (never a 500) with a JSON detail naming what is wrong, and stores nothing."""
    with api_server.client("admin") as admin:
        response = admin.request(method, path, content=body, headers=headers)
        assert admin.get("/instances/hostile_x").status_code == 404  # nothing was stored
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status, response.text[:500]
    payload = response.json()
    assert isinstance(payload["detail"], str | list) and payload["detail"]
    assert detail in json.dumps(payload, ensure_ascii=False), payload


def test_hostile_corpus_is_large() -> None:
    """Issue 10 item 11: the hostile-input corpus holds at least 40 requests."""
    assert len(CASES) >= 40
