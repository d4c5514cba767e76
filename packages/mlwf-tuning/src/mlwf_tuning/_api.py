"""The tuning HTTP API in Airflow's API server (``/mlwf/tuning``): the tunings and their results.

Read-only, for the tuning pages of mlwf-ui and for scripts. Every route needs a signed-in user
(Airflow's ``get_user``: the ``_token`` cookie or a Bearer token), and a tuning is shown only to
a user whom the configured auth manager allows to read the runs of its DAG (``is_authorized_dag``
with ``DagAccessEntity.RUN``, as Airflow's own DAG-run routes ask). A tuning the user may not
read answers exactly as one that does not exist, so a refusal tells nothing about another DAG.

The data come from the experiment store (``[mlwf_tuning] store_url``), which tuning DAGs write;
a tuning's id is ``<dag id>/<run id>`` (:func:`mlwf_tuning._rounds.tuning_id_of`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Path, Query
from mlwf_constructors.docs_routes import add_docs_routes
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from mlwf_tuning._api_models import (
    ErrorResponse,
    ExperimentOut,
    HyperparameterOut,
    TuningDetail,
    TuningList,
)
from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._report import best_record
from mlwf_tuning._rounds import MAX_TUNING_ID_LENGTH, tuning_id_of

log = logging.getLogger(__name__)

#: Where the plugin mounts the API in the API server.
URL_PREFIX = "/mlwf/tuning"
#: Tunings per page of ``GET /tunings`` at most (each summary reads its experiments' outcomes).
MAX_PAGE = 50
#: The longest DAG id or run id a route accepts (Airflow stores 250 characters).
MAX_ID_LENGTH = 250
_HASHED = re.compile(r"#[0-9a-f]{16}$")
_NOT_FOUND = "no such tuning, or you may not read its DAG's runs"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "not signed in"},
    403: {"model": ErrorResponse, "description": "not authorized"},
    404: {"model": ErrorResponse, "description": _NOT_FOUND},
    # 422 (a query or path parameter out of bounds): FastAPI's own HTTPValidationError.
}


def _store() -> Any:
    from mlwf_tuning._settings import default_store_url, open_store

    return open_store(default_store_url())


def _may_read_runs(user: Any, dag_id: str) -> bool:
    """Ask the configured auth manager whether ``user`` may read the runs of ``dag_id``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.configuration import conf

    team = None
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        team = DagModel.get_team_name(dag_id)
    return get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=dag_id, team_name=team),
        user=user,
    )


def _readable_dag_ids(user: Any, among: set[str]) -> set[str]:
    """Return the DAG ids among ``among`` whose runs ``user`` may read (DAGs Airflow knows only)."""
    from airflow.api_fastapi.app import get_auth_manager

    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET") & among
    return {dag_id for dag_id in readable if _may_read_runs(user, dag_id)}


def split_tuning_id(tuning_id: str) -> tuple[str, str | None]:
    """Return ``(dag id, run id)`` of a tuning id; the run id is None when the id was cut."""
    dag_id, _, run_id = tuning_id.partition("/")
    cut = len(tuning_id) == MAX_TUNING_ID_LENGTH and _HASHED.search(tuning_id) is not None
    return dag_id, (None if cut or not run_id else run_id)


def _spec_fields(spec_json: str) -> dict[str, Any]:
    """The stored spec (``plan_json``) as a dict; a damaged one as an empty dict (logged)."""
    try:
        spec = json.loads(spec_json)
    except ValueError:
        spec = None
    if not isinstance(spec, dict):
        log.warning("mlwf-tuning: ignoring an unreadable stored spec %r", spec_json[:200])
        return {}
    return spec


def _best(outcomes: list[tuple[int, str, dict[str, float]]], metric: str, direction: str) -> Any:
    """The best succeeded experiment of ``(index, state, metrics)`` rows (``best_record``'s rule)."""
    succeeded = [
        ExperimentRecord(index=i, params={}, state=ExperimentState.SUCCEEDED, metrics=m)
        for i, state, m in outcomes
        if state == ExperimentState.SUCCEEDED.value
    ]
    return best_record(succeeded, metric, direction)


def _metrics(stored: str) -> dict[str, float] | None:
    """A stored metrics JSON object (its numbers); None when it cannot be read."""
    try:
        value = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {
        k: float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _summary(
    tuning_id: str,
    created: Any,
    spec: dict[str, Any],
    outcomes: list[tuple[int, str, str]],
    run_state: str | None,
    dag_id: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A tuning's summary from its stored outcomes; what cannot be read is named in ``problem``."""
    split_dag, split_run = split_tuning_id(tuning_id)
    metric = str(spec.get("metric", ""))
    direction = str(spec.get("direction", "minimize"))
    readable: list[tuple[int, str, dict[str, float]]] = []
    unreadable = 0
    states: dict[str, int] = {}
    for index, state, stored in outcomes:
        states[state] = states.get(state, 0) + 1  # a state a newer version wrote is counted too
        metrics = _metrics(stored)
        if metrics is None:
            unreadable += 1
        else:
            readable.append((index, state, metrics))
    best = _best(readable, metric, direction)
    budget = spec.get("n_experiments")
    problems = []
    if not spec:
        problems.append("the stored spec cannot be read")
    if unreadable:
        problems.append(f"{unreadable} experiment(s) have metrics that cannot be read")
    return {
        "tuning_id": tuning_id,
        "dag_id": dag_id or split_dag,
        "run_id": run_id if dag_id else split_run,
        "created": created,
        "metric": metric,
        "direction": direction,
        "method": str(spec.get("method", "")),
        "n_experiments": budget
        if isinstance(budget, int) and not isinstance(budget, bool)
        else None,
        "states": states,
        "best_index": None if best is None else best.index,
        "best_value": None if best is None else best.metrics[metric],
        "run_state": run_state,
        "problem": "; ".join(problems) or None,
    }


def _run_states(pairs: list[tuple[str, str | None]]) -> dict[tuple[str, str], str]:
    """The state of each ``(dag id, run id)`` run that Airflow still has."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import and_, or_, select

    wanted = [(d, r) for d, r in pairs if r is not None]
    if not wanted:
        return {}
    with create_session() as session:
        rows = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(
                or_(*(and_(DagRun.dag_id == d, DagRun.run_id == r) for d, r in wanted))
            )
        ).all()
    return {(d, r): str(state) for d, r, state in rows if state is not None}


def _dag_known(dag_id: str) -> bool:
    """Whether Airflow's DAG table has ``dag_id`` (the list shows tunings of such DAGs only)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.execute(select(DagModel.dag_id).where(DagModel.dag_id == dag_id)).first()
    return found is not None


def _hyperparameters(spec: dict[str, Any]) -> list[HyperparameterOut]:
    space = spec.get("hyperparameters")
    found = []
    for name, declared in sorted(space.items()) if isinstance(space, dict) else []:
        try:
            found.append(HyperparameterOut.model_validate({**declared, "name": name}))
        except (TypeError, ValidationError):  # a declaration this version cannot read: left out
            log.warning("mlwf-tuning: ignoring hyperparameter %r of a stored spec", name)
    return found


def _experiment(record: ExperimentRecord) -> ExperimentOut:
    return ExperimentOut(
        index=record.index,
        params=record.params,
        state=record.state.value,
        metrics={k: v if math.isfinite(v) else None for k, v in record.metrics.items()},
        intermediate=sorted(record.intermediate.items()),
        started=record.started,
        finished=record.finished,
        duration_s=record.duration_s,
        error=record.error,
    )


def create_app() -> FastAPI:
    """Return the FastAPI app mounted by the plugin."""
    app = FastAPI(title="mlwf-tuning", docs_url=None, redoc_url=None, openapi_url=None)
    add_docs_routes(app)

    @app.get("/tunings", responses=_ERRORS)
    async def list_tunings(
        user: GetUserDep,
        dag_id: Annotated[
            str | None, Query(max_length=MAX_ID_LENGTH, description="Only this DAG's tunings")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 25,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> TuningList:
        """List the tunings whose DAG's runs the user may read, newest first."""

        def run() -> dict[str, Any]:
            store = _store()
            ids = [
                (tuning_id, split_tuning_id(tuning_id)[0])
                for tuning_id, _ in store.tuning_ids()
                if dag_id is None or split_tuning_id(tuning_id)[0] == dag_id
            ]
            readable = _readable_dag_ids(user, {d for _, d in ids})
            visible = [tuning_id for tuning_id, d in ids if d in readable]
            page = store.tunings(visible[offset : offset + limit])
            outcomes = store.outcomes([t.tuning_id for t in page])
            runs = _run_states([split_tuning_id(t.tuning_id) for t in page])
            summaries = []
            for t in page:
                dag, run = split_tuning_id(t.tuning_id)
                state = runs.get((dag, run)) if run is not None else None
                spec = _spec_fields(t.spec_json)
                summaries.append(
                    _summary(t.tuning_id, t.created, spec, outcomes[t.tuning_id], state)
                )
            return {"tunings": summaries, "total_entries": len(visible)}

        return TuningList.model_validate(await run_in_threadpool(run))

    @app.get("/tunings/{dag_id}/{run_id}", responses=_ERRORS)
    async def get_tuning(
        user: GetUserDep,
        dag_id: Annotated[str, Path(max_length=MAX_ID_LENGTH)],
        run_id: Annotated[str, Path(max_length=MAX_ID_LENGTH)],
    ) -> TuningDetail:
        """Return a tuning (a run of a tuning DAG): its search space and every experiment."""

        def run() -> dict[str, Any] | None:
            # As the list: a tuning of a DAG Airflow does not know is shown to nobody.
            if not _dag_known(dag_id) or not _may_read_runs(user, dag_id):
                return None
            store = _store()
            tuning_id = tuning_id_of(dag_id, run_id)
            stored = store.tunings([tuning_id])
            if not stored:
                return None
            spec = _spec_fields(stored[0].spec_json)
            summary = _summary(
                tuning_id,
                stored[0].created,
                spec,
                store.outcomes([tuning_id])[tuning_id],
                _run_states([(dag_id, run_id)]).get((dag_id, run_id)),
                dag_id,
                run_id,
            )
            try:
                experiments = [_experiment(r) for r in store.load(tuning_id)]
            except (ValueError, TypeError, KeyError) as err:  # a row this version cannot read
                log.warning("mlwf-tuning: cannot read the experiments of %r: %s", tuning_id, err)
                experiments = []
                summary["problem"] = f"the experiments cannot be read ({str(err)[:200]})"
            return {
                **summary,
                "hyperparameters": _hyperparameters(spec),
                "experiments": experiments,
            }

        found = await run_in_threadpool(run)
        if found is None:
            raise HTTPException(404, _NOT_FOUND)
        return TuningDetail.model_validate(found)

    return app


class TuningPlugin(AirflowPlugin):
    """The tuning API inside the API server, authenticated and authorized per DAG."""

    name = "mlwf_tuning"
    fastapi_apps: list[Any] = [  # noqa: RUF012  (AirflowPlugin declares it a class attribute)
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "mlwf-tuning"}
    ]
