"""The OpenAPI document and Swagger UI of an Airflow plugin's FastAPI app, for signed-in users only.

Plugin apps get no Airflow authentication, and FastAPI's own docs routes answer anyone. Create
the app with ``docs_url=None, redoc_url=None, openapi_url=None`` and call
:func:`add_docs_routes`: ``/openapi.json`` and (with ``[api] enable_swagger_ui``) ``/docs``
then need Airflow's ``get_user``. Used by the constructors and tuning plugins.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

__all__ = ["add_docs_routes"]


def add_docs_routes(app: FastAPI) -> None:
    """Serve ``/openapi.json`` and (with ``[api] enable_swagger_ui``) ``/docs`` to signed-in users."""
    from airflow.configuration import conf
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(get_user)])
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    if conf.getboolean("api", "enable_swagger_ui", fallback=True):

        @app.get("/docs", include_in_schema=False, dependencies=[Depends(get_user)])
        async def docs(request: Request) -> HTMLResponse:
            prefix = request.scope.get("root_path", "").rstrip("/")
            return get_swagger_ui_html(openapi_url=f"{prefix}/openapi.json", title=app.title)
