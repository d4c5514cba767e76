"""The Airflow plugin: the metrics of every process at ``/mlwf-stats-bridge/metrics``, behind auth.

Plugin FastAPI apps get no authentication from Airflow, so the route depends on Airflow's
``get_user`` (401 without a valid token or cookie) and then asks the auth manager whether that
user may read metrics (403 otherwise): ``[mlwf_stats_bridge] metrics_access`` names the check.
The app serves no ``/docs``, ``/redoc`` or ``/openapi.json``: FastAPI would serve them to anyone.
Only this module imports Airflow, so ``import mlwf_stats_bridge`` does not: it is a public module
of its own (``create_app()`` builds the app, e.g. for a ``TestClient``) that the package's
``__init__`` does not import.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import get_user
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from mlwf_stats_bridge._exposition import exposition

log = logging.getLogger(__name__)

URL_PREFIX = "/mlwf-stats-bridge"
CONFIG_SECTION = "mlwf_stats_bridge"
ACCESS_OPTION = "metrics_access"
#: ``metrics_access`` values → what the auth manager is asked. Metrics name every DAG, task,
#: pool and executor of the deployment, whatever DAG-level permissions a user has: like the
#: configuration, they describe the whole deployment, so the default asks who may read it.
ACCESS_CHECKS = {
    "read_configuration": "is_authorized_configuration(method='GET')",
    "edit_configuration": "is_authorized_configuration(method='PUT')",
    "authenticated": "none: any user Airflow authenticates",
}
DEFAULT_ACCESS = "read_configuration"


def metrics_access() -> str:
    """Return the configured ``[mlwf_stats_bridge] metrics_access``; raise 500 naming a bad value."""
    value = conf.get(CONFIG_SECTION, ACCESS_OPTION, fallback=DEFAULT_ACCESS).strip().lower()
    if value not in ACCESS_CHECKS:
        message = (
            f"[{CONFIG_SECTION}] {ACCESS_OPTION} = {value!r} is not one of "
            f"{', '.join(sorted(ACCESS_CHECKS))}"
        )
        log.error("mlwf-stats-bridge: %s", message)  # an operator's mistake: say it in the log too
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, message)
    return value


def _may_read_metrics(user: BaseUser, access: str) -> bool:
    if access == "authenticated":
        return True
    auth_manager = get_auth_manager()
    method: ResourceMethod = "GET" if access == "read_configuration" else "PUT"
    return bool(auth_manager.is_authorized_configuration(method=method, user=user))


def require_metrics_access(user: BaseUser = Depends(get_user)) -> BaseUser:  # noqa: B008
    """FastAPI dependency: the authenticated user, if ``metrics_access`` lets them read metrics."""
    access = metrics_access()
    if not _may_read_metrics(user, access):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"user {user.get_name()!r} may not read metrics "
            f"([{CONFIG_SECTION}] {ACCESS_OPTION} = {access}: {ACCESS_CHECKS[access]})",
        )
    return user


def create_app() -> FastAPI:
    """Return the FastAPI app mounted by the plugin (no docs or OpenAPI routes)."""
    app = FastAPI(title="mlwf-stats-bridge", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics", dependencies=[Depends(require_metrics_access)])
    def metrics() -> Response:
        """Return the Prometheus exposition of every process of the instance."""
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


class StatsBridgePlugin(AirflowPlugin):
    """Serves the bridge's metrics inside the API server, to users allowed to read them."""

    name = "mlwf_stats_bridge"
    fastapi_apps: list[Any] = [  # noqa: RUF012  (AirflowPlugin declares it a class attribute)
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "mlwf-stats-bridge"}
    ]
