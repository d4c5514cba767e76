"""The Airflow plugin: the constructors HTTP API at ``/mlwf/constructors``, and a start-up sync.

Plugin FastAPI apps get no authentication from Airflow, so every route depends on Airflow's
``get_user`` (401 without a valid token or cookie) and asks the configured auth manager whether
the user may act on the instance's DAG (``is_authorized_dag`` with ``DagDetails(id=instance_id)``:
GET to read, POST to create, PUT to change or enable/disable, DELETE to delete; 403 otherwise).
Listing instances shows only those whose DAG the user may read.

The root middleware runs :meth:`Constructors.sync` when the api-server starts (ASGI lifespan),
so a fresh container re-creates every instance's DAG file from the store.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlwf_constructors._errors import (
    ConstructorNotFoundError,
    ConstructorsError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    ParameterValidationError,
)
from mlwf_constructors._ids import check_instance_id
from mlwf_constructors._service import Constructors

log = logging.getLogger(__name__)
URL_PREFIX = "/mlwf/constructors"
Method = Literal["GET", "POST", "PUT", "DELETE"]

_lock = threading.Lock()
_service: Constructors | None = None


def service() -> Constructors:
    """Return the process's Constructors (created on first use from Airflow's configuration)."""
    global _service
    with _lock:
        if _service is None:
            _service = Constructors.from_airflow()
        return _service


def _authorize(user: BaseUser, method: Method, instance_id: str | None) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().is_authorized_dag(
        method=method, details=DagDetails(id=instance_id), user=user
    )


def _require(user: BaseUser, method: Method, instance_id: str) -> None:
    if not _authorize(user, method, instance_id):
        raise HTTPException(403, f"not authorized to {method} DAG {instance_id!r}")


def _error(err: ConstructorsError) -> JSONResponse:
    status = 500
    body: dict[str, Any] = {"detail": str(err)}
    if isinstance(err, ParameterValidationError):
        status, body["parameter"] = 422, err.parameter
    elif isinstance(err, InvalidInstanceIdError | ConstructorNotFoundError):
        status = 422
    elif isinstance(err, InstanceExistsError):
        status = 409
    elif isinstance(err, InstanceNotFoundError):
        status = 404
    if status == 500:
        log.exception("mlwf-constructors: request failed", exc_info=err)
    return JSONResponse(body, status_code=status)


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    """Read at most ``limit`` bytes of a JSON object body; 413 beyond, 422 if it is not an object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except ValueError as err:
        raise HTTPException(422, f"request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    if name not in body:
        if required:
            raise HTTPException(422, f"field {name!r} is required")
        return None
    value = body[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise HTTPException(422, f"field {name!r} must be a {kind.__name__}")
    return value


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPException(422, f"unknown field(s): {', '.join(unknown)}")


def create_app() -> FastAPI:
    """Return the FastAPI app mounted by the plugin."""
    app = FastAPI(title="mlwf-constructors")
    app.add_exception_handler(ConstructorsError, lambda _r, e: _error(e))
    authenticated = [Depends(get_user)]

    @app.get("/constructors", dependencies=authenticated)
    async def list_constructors(user: GetUserDep) -> dict[str, Any]:
        """List the registered constructors with the JSON schema of their parameters."""
        if not await run_in_threadpool(_authorize, user, "GET", None):
            raise HTTPException(403, "not authorized to read DAGs")
        svc = await run_in_threadpool(service)
        return {
            "constructors": [
                {
                    "name": ref,
                    "version": entry.version,
                    "description": entry.cls.description,
                    "source": entry.source,
                    "schema": entry.cls.schema(),
                }
                for ref, entry in sorted(svc.registry.items())
            ]
        }

    @app.get("/instances")
    async def list_instances(user: GetUserDep) -> dict[str, Any]:
        """List the instances whose DAG the user may read."""

        def run() -> list[dict[str, Any]]:
            return [
                r.as_json()
                for r in service().store.list()
                if _authorize(user, "GET", r.instance_id)
            ]

        return {"instances": await run_in_threadpool(run)}

    @app.post("/instances", status_code=201)
    async def create_instance(request: Request, user: GetUserDep) -> Any:
        """Create an instance: ``{"instance_id", "constructor", "values", "enabled"?}``."""
        svc = await run_in_threadpool(service)
        body = await _json_body(request, svc.settings.max_body_bytes)
        _only(body, {"instance_id", "constructor", "values", "enabled"})
        instance_id = check_instance_id(_field(body, "instance_id", str))
        constructor = _field(body, "constructor", str)
        values = _field(body, "values", dict, required=False) or {}
        enabled = _field(body, "enabled", bool, required=False)
        await run_in_threadpool(_require, user, "POST", instance_id)
        record = await run_in_threadpool(
            lambda: svc.create(
                instance_id,
                constructor,
                values,
                owner=user.get_name(),
                enabled=True if enabled is None else enabled,
            )
        )
        return record.as_json()

    @app.get("/instances/{instance_id}")
    async def get_instance(instance_id: str, user: GetUserDep) -> Any:
        """Return one instance."""
        check_instance_id(instance_id)
        await run_in_threadpool(_require, user, "GET", instance_id)
        return (await run_in_threadpool(lambda: service().store.get(instance_id))).as_json()

    @app.patch("/instances/{instance_id}")
    async def update_instance(instance_id: str, request: Request, user: GetUserDep) -> Any:
        """Change values (merged over the stored ones) and/or ``enabled``."""
        check_instance_id(instance_id)
        svc = await run_in_threadpool(service)
        body = await _json_body(request, svc.settings.max_body_bytes)
        _only(body, {"values", "enabled"})
        values = _field(body, "values", dict, required=False)
        enabled = _field(body, "enabled", bool, required=False)
        await run_in_threadpool(_require, user, "PUT", instance_id)
        record = await run_in_threadpool(
            lambda: svc.update(instance_id, values=values, enabled=enabled)
        )
        return record.as_json()

    for action, flag in (("enable", True), ("disable", False)):

        def toggle(flag: bool) -> Callable[..., Awaitable[Any]]:
            async def route(instance_id: str, user: GetUserDep) -> Any:
                check_instance_id(instance_id)
                await run_in_threadpool(_require, user, "PUT", instance_id)
                record = await run_in_threadpool(
                    lambda: service().update(instance_id, enabled=flag)
                )
                return record.as_json()

            route.__doc__ = f"{'Enable' if flag else 'Disable'} an instance (its DAG file {'appears' if flag else 'is removed'})."
            return route

        app.post(f"/instances/{{instance_id}}/{action}", name=f"{action}_instance")(toggle(flag))

    @app.delete("/instances/{instance_id}", status_code=204)
    async def delete_instance(instance_id: str, user: GetUserDep) -> None:
        """Delete an instance and its DAG file."""
        check_instance_id(instance_id)
        await run_in_threadpool(_require, user, "DELETE", instance_id)
        await run_in_threadpool(lambda: service().delete(instance_id))

    return app


class SyncOnStartup:
    """ASGI middleware on the api-server's root app: re-creates instance files at start-up."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        """Wrap the root ASGI ``app``."""
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """Pass every request through; on the lifespan scope, sync before serving."""
        if scope["type"] == "lifespan":
            try:
                report = await run_in_threadpool(lambda: service().sync())
                log.info(
                    "mlwf-constructors: start-up sync wrote %d, removed %d, kept %d file(s)%s",
                    len(report.written),
                    len(report.removed),
                    len(report.unchanged),
                    f", failed {report.failed}" if report.failed else "",
                )
            except Exception:  # never keep the API server from starting
                log.exception("mlwf-constructors: start-up sync failed")
        await self.app(scope, receive, send)


class ConstructorsPlugin(AirflowPlugin):
    """The constructors API inside the API server, authenticated and authorized per DAG."""

    name = "mlwf_constructors"
    fastapi_apps: list[Any] = [  # noqa: RUF012  (AirflowPlugin declares it a class attribute)
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "mlwf-constructors"}
    ]
    fastapi_root_middlewares: list[Any] = [  # noqa: RUF012
        {"middleware": SyncOnStartup, "name": "mlwf-constructors-sync"}
    ]
