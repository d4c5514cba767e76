"""The CSRF rules of the constructors API on requests as Starlette builds them from ASGI scopes."""

from __future__ import annotations

import pytest
from fastapi import HTTPException, Request
from mlwf_constructors._security import check_write, expected_origins


def _request(*, scheme: str = "http", host: str = "airflow.local:8080", **headers: str) -> Request:
    raw = [(b"host", host.encode())] + [
        (name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()
    ]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "path": "/",
            "query_string": b"",
            "headers": raw,
        }
    )


def _status(request: Request, *, has_body: bool = True) -> int:
    try:
        check_write(request, has_body=has_body)
    except HTTPException as err:
        return err.status_code
    return 200


def test_without_base_url_the_request_s_own_origin_is_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 10 item 3: without [api] base_url a cookie write must come from the request's own scheme://host:port."""
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    json_type = "application/json"
    assert expected_origins(_request()) == ["http://airflow.local:8080"]
    assert _status(_request(origin="http://airflow.local:8080", content_type=json_type)) == 200
    assert _status(_request(referer="http://AIRFLOW.local:8080/x?y", content_type=json_type)) == 200
    assert _status(_request(origin="http://airflow.local:8081", content_type=json_type)) == 403
    assert _status(_request(origin="https://airflow.local:8080", content_type=json_type)) == 403
    assert _status(_request(origin="null", content_type=json_type)) == 403
    assert _status(_request(content_type=json_type)) == 403


def test_base_url_decides_the_expected_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 3: with [api] base_url set, its origin (default port made explicit) and the request's own are accepted, no other."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team/")
    json_type = "application/json; charset=utf-8"
    behind_proxy = {"host": "10.0.0.5:8080", "content_type": json_type}
    assert _status(_request(origin="https://airflow.example.com", **behind_proxy)) == 200
    assert _status(_request(origin="https://airflow.example.com:443", **behind_proxy)) == 200
    assert _status(_request(origin="http://airflow.example.com", **behind_proxy)) == 403
    assert _status(_request(origin="http://10.0.0.5:8080", **behind_proxy)) == 200
    assert _status(_request(origin="http://10.0.0.5:8081", **behind_proxy)) == 403
    assert _status(_request(origin="https://airflow.example.com.evil.net", **behind_proxy)) == 403


def test_bearer_requests_skip_the_origin_check_but_bodies_need_json() -> None:
    """Issue 10 item 3: a Bearer request needs no Origin, but a body must be application/json; body-less it needs nothing."""
    bearer = {"authorization": "Bearer abc"}
    assert _status(_request(content_type="application/json", **bearer)) == 200
    assert _status(_request(content_type="text/plain", **bearer)) == 415
    assert _status(_request(**bearer)) == 415
    assert _status(_request(**bearer), has_body=False) == 200
    cookie_same_site = {"origin": "http://airflow.local:8080"}
    assert _status(_request(**cookie_same_site), has_body=False) == 415


@pytest.mark.parametrize(
    "header",
    [
        {"referer": "http://evil.com\\@airflow.local:8080/"},
        {"referer": "http://evil.com@airflow.local:8080/page"},
        {"origin": "http://user:pw@airflow.local:8080"},
        {"origin": "http://evil.com\\@airflow.local:8080"},
    ],
)
def test_origin_with_userinfo_or_backslash_is_refused(
    monkeypatch: pytest.MonkeyPatch, header: dict[str, str]
) -> None:
    """Issue 10 item 7: a cookie write whose Origin or Referer hides another host before an '@' (or after a backslash) is refused with 403."""
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert _status(_request(content_type="application/json", **header)) == 403


def test_referer_with_at_sign_in_its_path_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 7: an '@' in the path or query of a same-origin Referer does not make it foreign."""
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    referer = "http://airflow.local:8080/dags?owner=a@b.c"
    assert _status(_request(referer=referer, content_type="application/json")) == 200
