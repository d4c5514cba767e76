"""The Airflow plugin: the metrics of every process at ``/mlwf-stats-bridge/metrics``, behind auth.

Plugin FastAPI apps get no authentication from Airflow, so the route depends on Airflow's
``get_user`` (401 without a valid token or cookie). Only this module imports Airflow.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mlwf_stats_bridge._exposition import exposition

URL_PREFIX = "/mlwf-stats-bridge"


def create_app() -> FastAPI:
    """Return the FastAPI app mounted by the plugin."""
    app = FastAPI(title="mlwf-stats-bridge")

    @app.get("/metrics", dependencies=[Depends(get_user)])
    def metrics() -> Response:
        """Return the Prometheus exposition of every process of the instance."""
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


class StatsBridgePlugin(AirflowPlugin):
    """Serves the bridge's metrics inside the API server, for authenticated users only."""

    name = "mlwf_stats_bridge"
    fastapi_apps: list[Any] = [  # noqa: RUF012  (AirflowPlugin declares it a class attribute)
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "mlwf-stats-bridge"}
    ]
