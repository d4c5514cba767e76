"""Pruning inside experiment runs: ``report_intermediate``, the early stopping of a DAG tuning.

A task of an experiment run reports ``(step, value)``. The value joins the experiment's curve in
the tuning's store, then the spec's median-stopping rule decides, against the curves of the
tuning's succeeded experiments, whether the experiment goes on. When it stops, the experiment's
record is saved as pruned (with the reason and its curve) and ``ExperimentRunPrunedError`` raised: an
``ExperimentPrunedError`` that Airflow treats as a skip, so the task is not retried, the tasks after
it are skipped, and the tuner, which keeps a record the experiment finished itself, counts the
experiment as pruned whatever the state of its run.

The run finds its tuning in its ``conf``: ``EXPERIMENT_CONF_KEY`` = ``{"tuning_id", "index",
"token"}``, set by the tuner. A run without that key is not an experiment (the pipeline runs
standalone): reporting is then a no-op. Anyone allowed to trigger the pipeline can write that
key, so a report is accepted only from the run the tuner created for the experiment: the run id
and the token the store recorded for it (``ExperimentStore.experiment_run``) must both match;
otherwise ``ForeignExperimentRunError`` (nothing recorded).
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlwf_tuning._contract import EXPERIMENT_CONF_KEY, token_of
from mlwf_tuning._errors import (
    ExperimentConflictError,
    ExperimentNotFoundError,
    ExperimentRunPrunedError,
    ForeignExperimentRunError,
    TuningError,
)
from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._settings import default_store_url, open_store
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._stopping import stop_reason
from mlwf_tuning._store import IntermediateStore, check_intermediate

log = logging.getLogger(__name__)


def report_intermediate(
    step: int,
    value: float | Mapping[str, float],
    *,
    context: Mapping[str, Any] | None = None,
    store: IntermediateStore | str | None = None,
) -> None:
    """Report an intermediate value of the running experiment; stop it if the spec's rule says so.

    Call it from any task of an experiment run, once per step (an epoch, a checkpoint), with the
    value of the spec's metric at that step, or a dict of metrics holding it (others are
    ignored). Reporting a step again replaces its value. When the spec's ``early_stopping`` rule
    stops the experiment, its record is saved as pruned and ``ExperimentRunPrunedError`` (an
    ``ExperimentPrunedError`` and an ``AirflowSkipException``) is raised: let it propagate.

    Outside a tuning (no ``mlwf_tuning`` key in the run's ``conf``, or no Airflow task at all)
    it does nothing, so a pipeline also runs standalone. A run whose ``conf`` claims an
    experiment but which is not the run the tuner created for it (run id and token recorded in
    the store) raises ``ForeignExperimentRunError`` and records nothing. ``context`` defaults to the current
    task's; ``store`` to the tuner's default store (``[mlwf_tuning] store_url`` or its fallback):
    pass the tuner's own if it was given one.
    """
    experiment = _experiment_of(context)
    if experiment is None:
        return
    tuning_id, index, run_id, token = experiment
    step, _ = check_intermediate(step, 0.0)
    resolved = _resolve(store)
    spec_json = resolved.tuning_spec(tuning_id)
    if spec_json is None:
        raise ExperimentNotFoundError(
            f"tuning {tuning_id!r} (run conf key {EXPERIMENT_CONF_KEY!r}) is not in the "
            f"experiment store {_describe(resolved)}; report to the store its tuner records in"
        )
    _check_run(resolved, tuning_id, index, run_id, token)
    spec = _spec(spec_json)
    metric_value = _metric_value(value, spec.metric, step)
    if metric_value is None:
        return
    _, metric_value = check_intermediate(step, metric_value)
    record = _record_of(resolved, tuning_id, index)
    if record.state == ExperimentState.PRUNED:  # a retried task, or another task stopped it
        raise ExperimentRunPrunedError(record.error or f"experiment {index} was pruned")
    if record.state.finished:
        log.warning(
            "tuning %s experiment %d already finished as %s; step %d not recorded",
            tuning_id,
            index,
            record.state.value,
            step,
        )
        return
    curve = resolved.append_intermediate(tuning_id, index, step, metric_value)
    if spec.early_stopping is None:
        return
    records = resolved.load(tuning_id)
    finished = [
        r.intermediate for r in records if r.state == ExperimentState.SUCCEEDED and r.index != index
    ]
    reason = stop_reason(
        spec.early_stopping, spec.direction, finished, step, metric_value, metric=spec.metric
    )
    if reason is None:
        return
    _prune(resolved, tuning_id, record, curve, reason)


def _check_run(
    store: IntermediateStore, tuning_id: str, index: int, run_id: str | None, token: str | None
) -> None:
    """Raise ``ForeignExperimentRunError`` unless run ``run_id`` with ``token`` is the experiment's run."""
    run = store.experiment_run(tuning_id, index)
    ours = (
        run is not None
        and run_id == run.run_id
        and token is not None
        and isinstance(token, str)
        # bytes: compare_digest raises TypeError on non-ASCII str
        and secrets.compare_digest(token.encode(), run.token.encode())
    )
    if not ours:
        raise ForeignExperimentRunError(
            f"run {run_id!r} claims experiment {index} of tuning {tuning_id!r} (run conf key "
            f"{EXPERIMENT_CONF_KEY!r}), but it is not the run the tuner created for it (run id "
            "or token differ): nothing reported"
        )


def _experiment_of(
    context: Mapping[str, Any] | None,
) -> tuple[str, int, str | None, str | None] | None:
    """Return ``(tuning_id, index, run_id, token)`` from the run and its conf, or None outside a tuning."""
    if context is None:
        from airflow.sdk import get_current_context

        try:
            context = get_current_context()
        except RuntimeError:
            log.warning("report_intermediate called outside an Airflow task: nothing reported")
            return None
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    entry = conf.get(EXPERIMENT_CONF_KEY)
    if entry is None:
        log.debug("run without conf key %r: not a tuning experiment", EXPERIMENT_CONF_KEY)
        return None
    tuning_id = entry.get("tuning_id") if isinstance(entry, Mapping) else None
    index = entry.get("index") if isinstance(entry, Mapping) else None
    if not isinstance(tuning_id, str) or isinstance(index, bool) or not isinstance(index, int):
        raise TuningError(
            f"run conf key {EXPERIMENT_CONF_KEY!r} must be "
            f'{{"tuning_id": str, "index": int, "token": str}}; got {entry!r}'
        )
    run_id = getattr(dag_run, "run_id", None)
    return tuning_id, index, run_id if isinstance(run_id, str) else None, token_of(conf)


def _metric_value(value: float | Mapping[str, float], metric: str, step: int) -> float | None:
    if not isinstance(value, Mapping):
        return value
    if metric in value:
        return value[metric]
    log.warning(
        "step %d reported metrics %s without %r, the tuning's metric: nothing recorded",
        step,
        sorted(value),
        metric,
    )
    return None


def _record_of(store: IntermediateStore, tuning_id: str, index: int) -> ExperimentRecord:
    record = next((r for r in store.load(tuning_id) if r.index == index), None)
    if record is None:
        raise ExperimentNotFoundError(
            f"tuning {tuning_id!r} has no experiment {index} in the experiment store "
            f"{_describe(store)}"
        )
    return record


def _prune(
    store: IntermediateStore,
    tuning_id: str,
    record: ExperimentRecord,
    curve: dict[int, float],
    reason: str,
) -> None:
    """Save the experiment as pruned, then raise ``ExperimentRunPrunedError``."""
    pruned = record.evolve(
        state=ExperimentState.PRUNED,
        intermediate=curve,
        finished=datetime.now(UTC),
        error=reason,
    )
    try:
        store.save(tuning_id, [pruned])
    except ExperimentConflictError:
        # Another task of this run stopped it first: the stored outcome is the one that counts.
        current = _record_of(store, tuning_id, record.index)
        if current.state != ExperimentState.PRUNED:
            raise
        reason = current.error or reason
    log.info("tuning %s experiment %d %s", tuning_id, record.index, reason)
    raise ExperimentRunPrunedError(reason)


def _resolve(store: IntermediateStore | str | None) -> IntermediateStore:
    if store is None:
        store = default_store_url()
    return open_store(store) if isinstance(store, str) else store


@functools.lru_cache(maxsize=16)
def _spec(spec_json: str) -> HyperparameterTuningSpec:
    return HyperparameterTuningSpec.model_validate_json(spec_json)


def _describe(store: IntermediateStore) -> str:
    engine = getattr(store, "engine", None)
    return repr(engine.url) if engine is not None else type(store).__name__
