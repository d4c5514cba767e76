"""Small HTTP helpers for the instance's API server (httpx, a declared dependency)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from mlwf_instance._errors import AuthenticationError

HEALTH_PATH = "/api/v2/monitor/health"
#: SimpleAuthManager's login route (its FastAPI app is mounted at /auth): JSON {username, password}.
TOKEN_PATH = "/auth/token"
#: Components whose health ``/api/v2/monitor/health`` reports, besides the metadata database.
HEALTH_COMPONENTS = ("scheduler", "triggerer", "dag_processor")


def get_health(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """Return the parsed health document of the instance at ``url``, or None if it does not answer."""
    try:
        response = httpx.get(url.rstrip("/") + HEALTH_PATH, timeout=timeout)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def unhealthy_components(
    health: dict[str, Any] | None,
    since: datetime | None = None,
    since_by_component: Mapping[str, datetime] | None = None,
) -> list[str]:
    """Return the components not healthy in ``health`` (all of them if it is None).

    With ``since`` (timezone-aware), a component whose latest heartbeat is older than ``since`` counts as
    unhealthy: after a restart the previous run's heartbeats can look fresh for a while.
    ``since_by_component`` (health names: ``scheduler``, ``triggerer``, ``dag_processor``) overrides
    ``since`` for single components, e.g. one restarted later than the others.
    """
    if health is None:
        return ["api-server", *HEALTH_COMPONENTS]
    bad = []
    if (health.get("metadatabase") or {}).get("status") != "healthy":
        bad.append("metadatabase")
    for name in HEALTH_COMPONENTS:
        info = health.get(name) or {}
        if info.get("status") != "healthy":
            bad.append(name)
            continue
        threshold = (since_by_component or {}).get(name, since)
        if threshold is not None:
            beat = info.get(f"latest_{name}_heartbeat")
            try:
                stamp = datetime.fromisoformat(str(beat))
            except (TypeError, ValueError):
                bad.append(name)
                continue
            if stamp.tzinfo is None:  # Airflow stores UTC; be lenient with naive strings
                stamp = stamp.replace(tzinfo=UTC)
            fresh = stamp >= threshold
            if not fresh:
                bad.append(name)
    return bad


def get_api_token(url: str, username: str, password: str, timeout: float = 10.0) -> str:
    """Return a JWT for the REST API of the instance at ``url`` (SimpleAuthManager login).

    Use it as ``Authorization: Bearer <token>``.
    """
    token_url = url.rstrip("/") + TOKEN_PATH
    try:
        response = httpx.post(
            token_url,
            json={"username": username, "password": password},
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as err:
        raise AuthenticationError(f"POST {token_url} failed: {err}") from err
    if response.is_error:
        raise AuthenticationError(
            f"POST {token_url} as {username!r} failed with HTTP {response.status_code}: "
            f"{response.text[:300]}"
        )
    try:
        document = response.json()
    except ValueError as err:
        raise AuthenticationError(f"POST {token_url} returned no JSON: {err}") from err
    token = document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str):
        raise AuthenticationError(f"POST {token_url} returned no access_token: {document!r}")
    return token
