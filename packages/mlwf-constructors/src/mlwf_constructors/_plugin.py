"""The Airflow plugin: the constructors HTTP API at ``/mlwf/constructors``, and a start-up sync.

Plugin FastAPI apps get no authentication from Airflow, so every route depends on Airflow's
``get_user`` (401 without a valid token or cookie) and asks the configured auth manager whether
the user may act on the instance's DAG and on every DAG the instance defines or uses
(:mod:`mlwf_constructors._security`; 403 naming the DAG and the action otherwise). Writes
authenticated by the session cookie must come from the API server's origin and be JSON
(CSRF). ``/openapi.json`` and ``/docs`` need a signed-in user; ``/redoc`` is off.

The root middleware runs :meth:`Constructors.sync` when the api-server starts (ASGI lifespan),
so a fresh container re-creates every instance's DAG file from the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep, bearer_scheme, get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlwf_constructors import _security as sec
from mlwf_constructors._api_models import (
    ConstructorInfo,
    ConstructorList,
    CreateInstanceRequest,
    ErrorResponse,
    InstanceList,
    InstanceResponse,
    UpdateInstanceRequest,
)
from mlwf_constructors._body import bounded_json_route, validation_error_response
from mlwf_constructors._constructor import RelatedDag
from mlwf_constructors._errors import (
    ConstructorNotFoundError,
    ConstructorRefusedError,
    ConstructorsError,
    DagIdTakenError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    ParameterValidationError,
)
from mlwf_constructors._ids import check_instance_id
from mlwf_constructors._service import Constructors
from mlwf_constructors.docs_routes import add_docs_routes

log = logging.getLogger(__name__)
URL_PREFIX = "/mlwf/constructors"

_lock = threading.Lock()
_service: Constructors | None = None


def service() -> Constructors:
    """Return the process's Constructors (created on first use from Airflow's configuration)."""
    global _service
    with _lock:
        if _service is None:
            _service = Constructors.from_airflow()
        return _service


async def _max_body_bytes() -> int:
    """The configured body limit (``[mlwf_constructors] max_body_bytes``)."""
    return (await run_in_threadpool(service)).settings.max_body_bytes


async def _authenticate(request: Request) -> object:
    """Airflow's ``get_user`` resolved by hand (401/403 without valid credentials)."""
    return await get_user(request, None, await bearer_scheme(request))


#: What the routes answer besides success (typed in the OpenAPI document).
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "not signed in"),
        (403, "not authorized, or a cross-site write"),
        (404, "no such instance"),
        (409, "the instance or its DAG id exists"),
        (413, "request body too large"),
        (415, "a write with a body that is not JSON"),
        (422, "invalid request: `parameter` names the field or constructor parameter"),
    )
}


def _error(err: ConstructorsError) -> JSONResponse:
    status = 500
    body: dict[str, Any] = {"detail": str(err)}
    if isinstance(err, ParameterValidationError):
        status, body["parameter"] = 422, err.parameter
    elif isinstance(err, ConstructorNotFoundError):
        status, body["parameter"] = 422, "constructor"
    elif isinstance(err, InvalidInstanceIdError):
        status, body["parameter"] = 422, "instance_id"
    elif isinstance(err, ConstructorRefusedError):
        status, body["parameter"] = 422, "values"
    elif isinstance(err, InstanceExistsError):
        status = 409
    elif isinstance(err, InstanceNotFoundError):
        status = 404
    if status == 500:
        log.exception("mlwf-constructors: request failed", exc_info=err)
    return JSONResponse(body, status_code=status)


@contextmanager
def _taken_reported_to(user: Any) -> Iterator[None]:
    """Answer a taken DAG id with 409, naming where it is defined only if ``user`` may read that DAG.

    The location (another file, another bundle) tells of a DAG the user may not be allowed to
    see (e.g. another team's), so it is added only when the auth manager allows GET on it.
    """
    try:
        yield
    except DagIdTakenError as err:
        detail = str(err)
        if err.location and sec.is_authorized(user, "GET", err.dag_id, sec.dag_team(err.dag_id)):
            detail = f"{detail} ({err.location})"
        raise HTTPException(409, detail) from None


async def _json_write(request: Request, user: GetUserDep) -> None:
    """Dependency of writes with a JSON body: authenticated (401 first), then CSRF rules."""
    sec.check_write(request, has_body=True)


async def _bodyless_write(request: Request, user: GetUserDep) -> None:
    """Dependency of body-less writes (enable, disable, delete): authenticated, then CSRF rules."""
    sec.check_write(request, has_body=False)


def create_app() -> FastAPI:
    """Return the FastAPI app mounted by the plugin."""
    # FastAPI's own docs routes answer anyone; _add_docs_routes serves them to signed-in users.
    app = FastAPI(title="mlwf-constructors", docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = bounded_json_route(_max_body_bytes, _authenticate)
    app.add_exception_handler(ConstructorsError, lambda _r, e: _error(e))
    app.add_exception_handler(
        RequestValidationError,
        lambda _r, e: validation_error_response(e.errors()),
    )
    add_docs_routes(app)
    authenticated = [Depends(get_user)]

    @app.get("/constructors", dependencies=authenticated, responses=_ERRORS)
    async def list_constructors(user: GetUserDep) -> ConstructorList:
        """List the registered constructors with the JSON schema of their parameters."""
        if not await run_in_threadpool(sec.is_authorized, user, "GET", None, None):
            raise HTTPException(403, "not authorized to read DAGs")
        svc = await run_in_threadpool(service)
        return ConstructorList(
            constructors=[
                ConstructorInfo(
                    name=ref,
                    version=entry.version,
                    description=entry.cls.description,
                    source=entry.source,
                    schema=entry.cls.schema(),
                )
                for ref, entry in sorted(svc.registry.items())
            ]
        )

    @app.get("/instances", responses=_ERRORS)
    async def list_instances(user: GetUserDep) -> InstanceList:
        """List the instances whose DAG the user may read."""

        def run() -> list[dict[str, Any]]:
            svc = service()
            team = sec.bundle_team(svc.settings)
            return [
                r.as_json()
                for r in svc.store.list()
                if sec.is_authorized(user, "GET", r.instance_id, team)
            ]

        return InstanceList.model_validate({"instances": await run_in_threadpool(run)})

    @app.post("/instances", status_code=201, dependencies=[Depends(_json_write)], responses=_ERRORS)
    async def create_instance(body: CreateInstanceRequest, user: GetUserDep) -> InstanceResponse:
        """Create an instance of a constructor with parameter values."""
        svc = await run_in_threadpool(service)
        instance_id = check_instance_id(body.instance_id)
        constructor = body.constructor
        values = body.values or {}
        enabled = True if body.enabled is None else body.enabled

        def authorize(old: Any, new: Any, related: tuple[RelatedDag, ...]) -> None:
            sec.require(user, sec.checks(svc.settings, "POST", instance_id, related, uses=True))

        def run() -> Any:
            # The instance's own DAG first: no validation errors for a user who may not create it.
            sec.require(user, sec.checks(svc.settings, "POST", instance_id, uses=False))
            with _taken_reported_to(user):
                return svc.create(
                    instance_id,
                    constructor,
                    values,
                    owner=user.get_name(),
                    owner_groups=sec.owner_groups(user, instance_id),
                    enabled=enabled,
                    authorize=authorize,
                )

        return InstanceResponse.model_validate((await run_in_threadpool(run)).as_json())

    @app.get("/instances/{instance_id}", responses=_ERRORS)
    async def get_instance(instance_id: str, user: GetUserDep) -> InstanceResponse:
        """Return one instance."""
        check_instance_id(instance_id)

        def run() -> Any:
            svc = service()
            sec.require(user, sec.checks(svc.settings, "GET", instance_id, uses=False))
            return svc.store.get(instance_id).as_json()

        return InstanceResponse.model_validate(await run_in_threadpool(run))

    def change(
        user: Any, instance_id: str, values: dict[str, Any] | None, enabled: bool | None
    ) -> InstanceResponse:
        """Authorize and apply an update: PUT on the instance and every DAG it defines; unless it
        disables the instance, also the right to trigger and read the XComs of every DAG it uses.

        The related DAGs are those of the values written, authorized under the instance's lock
        (``authorize`` of :meth:`Constructors.update`): a concurrent PATCH cannot slip other
        values between the check and the write.
        """
        svc = service()
        sec.require(user, sec.checks(svc.settings, "PUT", instance_id, uses=False))
        # Disabling only removes the file; anything else may (again) make the DAG run.
        disabling = enabled is False

        def authorize(old: Any, new: Any, related: tuple[RelatedDag, ...]) -> None:
            sec.require(
                user, sec.checks(svc.settings, "PUT", instance_id, related, uses=not disabling)
            )

        with _taken_reported_to(user):
            record = svc.update(instance_id, values=values, enabled=enabled, authorize=authorize)
        return InstanceResponse.model_validate(record.as_json())

    @app.patch("/instances/{instance_id}", dependencies=[Depends(_json_write)], responses=_ERRORS)
    async def update_instance(
        instance_id: str, body: UpdateInstanceRequest, user: GetUserDep
    ) -> InstanceResponse:
        """Change values (merged over the stored ones) and/or ``enabled``."""
        check_instance_id(instance_id)
        return await run_in_threadpool(change, user, instance_id, body.values, body.enabled)

    for action, flag in (("enable", True), ("disable", False)):

        def toggle(flag: bool) -> Callable[..., Awaitable[InstanceResponse]]:
            async def route(instance_id: str, user: GetUserDep) -> InstanceResponse:
                check_instance_id(instance_id)
                return await run_in_threadpool(change, user, instance_id, None, flag)

            route.__doc__ = f"{'Enable' if flag else 'Disable'} an instance (its DAG file {'appears' if flag else 'is removed'})."
            return route

        app.post(
            f"/instances/{{instance_id}}/{action}",
            name=f"{action}_instance",
            dependencies=[Depends(_bodyless_write)],
            responses=_ERRORS,
        )(toggle(flag))

    @app.delete(
        "/instances/{instance_id}",
        status_code=204,
        dependencies=[Depends(_bodyless_write)],
        responses=_ERRORS,
    )
    async def delete_instance(instance_id: str, user: GetUserDep) -> None:
        """Delete an instance and its DAG file (DELETE on it and on every DAG it defines)."""
        check_instance_id(instance_id)

        def run() -> None:
            svc = service()
            sec.require(user, sec.checks(svc.settings, "DELETE", instance_id, uses=False))

            def authorize(old: Any, new: Any, related: tuple[RelatedDag, ...]) -> None:
                sec.require(
                    user, sec.checks(svc.settings, "DELETE", instance_id, related, uses=False)
                )

            svc.delete(instance_id, authorize=authorize)

        await run_in_threadpool(run)

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
