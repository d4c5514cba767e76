"""The mlwf pages in Airflow's UI: the React apps, and the route that serves their bundle.

Airflow's UI loads a React app's ``bundle_url`` with ``import()`` (relative to the page's base
URL, so an API server under a path prefix works) and renders ``globalThis[name]`` with the
route's ``dagId``/``runId``. One bundle serves every page: it sets ``globalThis[name]`` for each
app below. The bundle is a file of this package (``static/``, built from ``frontend/`` by
``npm run build``); it is served to signed-in users only, like every other mlwf route.

A react_apps entry that Airflow's model refuses drops the whole plugin without an error (only a
log line), so the entries are checked against that model in the tests.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, Response

#: Where the plugin mounts its routes in the API server.
URL_PREFIX = "/mlwf/ui"
#: The built files the route serves, by name (nothing else under static/ is reachable).
STATIC = Path(__file__).parent / "static"
SERVED = {"main.js": "text/javascript; charset=utf-8"}
#: The bundle's URL relative to the UI's base URL (``[api] base_url``'s path).
BUNDLE_URL = "mlwf/ui/static/main.js"

#: The pages. ``name`` is also the global the bundle sets to the page's component.
REACT_APPS: list[dict[str, Any]] = [
    {
        "name": "Constructors",
        "bundle_url": BUNDLE_URL,
        "destination": "nav",
        "url_route": "mlwf-constructors",
        "category": "browse",
    },
    {
        "name": "Tunings",
        "bundle_url": BUNDLE_URL,
        "destination": "nav",
        "url_route": "mlwf-tunings",
        "category": "browse",
    },
    {
        "name": "Tuning",
        "bundle_url": BUNDLE_URL,
        "destination": "dag_run",
        "url_route": "mlwf-tuning",
    },
]


@cache
def _file(name: str) -> tuple[bytes, str]:
    """The bytes of a served file and their ETag (read once per process)."""
    data = (STATIC / name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def create_app() -> FastAPI:
    """Return the FastAPI app mounted by the plugin (the bundle route only)."""
    app = FastAPI(title="mlwf-ui", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/static/{name}", dependencies=[Depends(get_user)], include_in_schema=False)
    async def static(name: str, request: Request) -> Response:
        if name not in SERVED:
            raise HTTPException(404, "no such file")
        try:
            data, etag = _file(name)
        except OSError:
            raise HTTPException(404, "the bundle is not built (see packages/mlwf-ui)") from None
        headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=SERVED[name], headers=headers)

    return app


class UiPlugin(AirflowPlugin):
    """The mlwf pages (Constructors, Tunings, a DAG run's Tuning tab) in Airflow's UI."""

    name = "mlwf_ui"
    react_apps = REACT_APPS
    fastapi_apps: list[Any] = [  # noqa: RUF012  (AirflowPlugin declares it a class attribute)
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "mlwf-ui"}
    ]
