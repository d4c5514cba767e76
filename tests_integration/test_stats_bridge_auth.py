"""Who may read /mlwf-stats-bridge/metrics: Airflow's real SimpleAuthManager and JWTs, in process.

The plugin's app runs in a test client here; ``laptop_instance/test_stats_bridge.py`` checks the same route
mounted in a real API server and scraped by Prometheus with a bearer token file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from mlwf_stats_bridge import PrometheusStatsClient
from mlwf_testsupport import airflow_home_env

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
METRICS = "/metrics"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Yield a JWT per SimpleAuthManager role, minted by the auth manager Airflow configures.

    Airflow checks every token's id against its revoked_token table, so the module migrates a
    throwaway SQLite metadata DB and points Airflow's ORM at it (and back afterwards).
    """
    home = tmp_path_factory.mktemp("stats-auth-home")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in airflow_home_env(home).items():
            patch.setenv(name, value)
        patch.setenv("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE_AUTH_MANAGER)
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "viewer:viewer,ops:op,admin:admin")
        patch.setenv(
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(home / "passwords.json")
        )
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "stats-bridge-auth-test-" + "s" * 48)
        from airflow import settings
        from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.utils.db import initdb

        settings.configure_vars()
        settings.configure_orm()
        try:
            initdb()
            purge_cached_app()
            auth_manager = init_auth_manager()
            yield {
                role: auth_manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
                for name, role in (("viewer", "viewer"), ("ops", "op"), ("admin", "admin"))
            }
        finally:
            purge_cached_app()
            settings.dispose_orm()
    settings.configure_vars()  # back to the session's own configuration
    settings.configure_orm()


@pytest.fixture
def client(tokens: dict[str, str]) -> Iterator[TestClient]:
    from mlwf_stats_bridge.plugin import create_app

    recorder = PrometheusStatsClient("localhost", 8125, "airflow", False)
    recorder.incr("ti.finish.auth_demo.t.success")  # something to see in an authorized answer
    with TestClient(create_app()) as test_client:
        yield test_client


def get(client: TestClient, path: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get(path, headers=headers)
    return response.status_code, response.text


def test_metrics_without_credentials_is_401(client: TestClient) -> None:
    """/metrics without a token or cookie answers 401 and no metrics."""
    status, body = get(client, METRICS)
    assert status == 401 and "airflow_" not in body


def test_forged_token_is_refused(client: TestClient) -> None:
    """A token not signed with the instance's secret gets no metrics (Airflow's 403)."""
    status, body = get(client, METRICS, "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.bad")
    assert status == 403 and "airflow_" not in body


def test_default_access_is_who_may_read_the_configuration(
    client: TestClient, tokens: dict[str, str]
) -> None:
    """By default /metrics answers a user the auth manager lets read the configuration (a SimpleAuthManager viewer)."""
    status, body = get(client, METRICS, tokens["viewer"])
    assert status == 200
    assert 'airflow_ti_finish_total{dag_id="auth_demo",state="success",task_id="t"}' in body


def test_edit_configuration_access_refuses_a_viewer_with_403(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 10: with metrics_access = edit_configuration a viewer gets 403 naming the check, an op 200."""
    monkeypatch.setenv("AIRFLOW__MLWF_STATS_BRIDGE__METRICS_ACCESS", "edit_configuration")
    status, body = get(client, METRICS, tokens["viewer"])
    assert status == 403
    assert "'viewer' may not read metrics" in body and "edit_configuration" in body
    assert "airflow_" not in body
    for role in ("op", "admin"):
        status, body = get(client, METRICS, tokens[role])
        assert status == 200 and "airflow_ti_finish_total" in body, role


def test_authenticated_access_lets_any_user_in(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With metrics_access = authenticated any valid token reads metrics; none still gets 401."""
    monkeypatch.setenv("AIRFLOW__MLWF_STATS_BRIDGE__METRICS_ACCESS", "authenticated")
    assert get(client, METRICS, tokens["viewer"])[0] == 200
    assert get(client, METRICS)[0] == 401


def test_unknown_access_setting_names_the_option(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown metrics_access value answers 500 naming the option and the allowed values, no metrics."""
    monkeypatch.setenv("AIRFLOW__MLWF_STATS_BRIDGE__METRICS_ACCESS", "everyone")
    status, body = get(client, METRICS, tokens["admin"])
    assert status == 500
    assert (
        "[mlwf_stats_bridge] metrics_access = 'everyone'" in body and "read_configuration" in body
    )


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_docs_routes_are_not_served(client: TestClient, tokens: dict[str, str], path: str) -> None:
    """Issue 10 item 10: the plugin serves no /docs, /redoc or /openapi.json, with or without a token."""
    assert get(client, path)[0] == 404
    assert get(client, path, tokens["admin"])[0] == 404
