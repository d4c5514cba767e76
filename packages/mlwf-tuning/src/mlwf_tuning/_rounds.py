"""The tuning DAG's bookkeeping, free of Airflow: plan a round, record its outcomes, summarize.

Every step reads the store first and writes idempotently, so a cleared or retried task of the
tuning DAG continues from what is recorded: finished experiments are never handed out again,
and experiments handed out but not recorded are handed out again under the same run id.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlwf_tuning._errors import TooManyFailedExperimentsError
from mlwf_tuning._planner import plan
from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._report import TuningResult
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._store import ExperimentStore

_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")
#: The longest run id Airflow stores.
MAX_RUN_ID_LENGTH = 250


#: The store's ``tuning_id`` columns hold 250 characters.
MAX_TUNING_ID_LENGTH = 250


def tuning_id_of(dag_id: str, run_id: str) -> str:
    """Return the tuning id of a tuning DAG run (clearing the run keeps it, so the run resumes).

    ``<dag id>/<run id>``; a longer one than the store holds (a DAG id and a manual run id can
    each be 250 characters) is cut and ends with a hash of the whole, so it stays unique.
    """
    raw = f"{dag_id}/{run_id}"
    if len(raw) <= MAX_TUNING_ID_LENGTH:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{raw[: MAX_TUNING_ID_LENGTH - len(digest) - 1]}#{digest}"


def experiment_run_id(tuning_dag_id: str, tuning_run_id: str, index: int, nonce: str = "") -> str:
    """Return the run id of experiment ``index``: the index first, then the tuning run and ``nonce``.

    The tuner passes a random ``nonce``, so nobody can create a run under the id before it
    does. An id that had to be cut to Airflow's 250 characters, or had characters replaced,
    ends with a hash of the whole id instead, so distinct tunings never share a run id.
    """
    raw = f"exp{index:04d}__{tuning_dag_id}__{tuning_run_id}" + (f"__{nonce}" if nonce else "")
    safe = _RUN_ID_UNSAFE.sub("_", raw)
    if safe == raw and len(safe) <= MAX_RUN_ID_LENGTH:
        return safe
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{safe[: MAX_RUN_ID_LENGTH - len(digest) - 1]}_{digest}"


def failed_count(records: Sequence[ExperimentRecord]) -> int:
    """Return how many experiments failed."""
    return sum(1 for r in records if r.state == ExperimentState.FAILED)


def check_failures(
    tuning_id: str, spec: HyperparameterTuningSpec, records: Sequence[ExperimentRecord]
) -> None:
    """Raise ``TooManyFailedExperimentsError`` when more experiments failed than the spec tolerates."""
    failed = [r for r in records if r.state == ExperimentState.FAILED]
    if len(failed) > spec.max_failed_experiments:
        raise TooManyFailedExperimentsError(
            tuning_id, len(failed), spec.max_failed_experiments, failed[-1].error
        )


def plan_round(
    store: ExperimentStore,
    tuning_id: str,
    spec: HyperparameterTuningSpec,
    *,
    started_at: datetime | None = None,
    now: datetime | None = None,
    limit: int | None = None,
    upto: int | None = None,
) -> list[ExperimentRecord]:
    """Return the experiments to run in this round, recorded as running.

    Unfinished experiments (handed out before an interruption) come first and alone; otherwise the
    planner's next experiments (the whole remaining plan for grid/random, ``parallelism`` for
    Bayesian methods), at most ``limit`` of them and none with an index of ``upto`` or more (a
    round already done is not done again when its task runs again). Returns nothing once every
    experiment is planned and finished, after the time budget (counted from ``started_at``), or
    when too many experiments failed.
    """
    now = now or datetime.now(UTC)
    records = store.load(tuning_id)
    if failed_count(records) > spec.max_failed_experiments:
        return []
    if (
        spec.time_budget_s is not None
        and started_at is not None
        and (now - started_at).total_seconds() >= spec.time_budget_s
    ):
        return []
    pending = [r for r in records if not r.state.finished]
    if not pending:
        if upto is not None and len(records) >= upto:
            return []
        pending = [r for r in plan(spec, records) if upto is None or r.index < upto][:limit]
        if not pending:
            return []
        store.save(tuning_id, pending)
    running = [
        r
        if r.state == ExperimentState.RUNNING
        else r.evolve(state=ExperimentState.RUNNING, started=r.started or now)
        for r in pending
    ]
    store.save(tuning_id, running)
    return running


@dataclass(frozen=True)
class Outcome:
    """What became of one experiment's run: its final state, its metrics or the error."""

    succeeded: bool
    metrics: Mapping[str, Any] | None = None
    error: str | None = None
    started: datetime | None = None
    finished: datetime | None = None


def finish_record(
    record: ExperimentRecord, outcome: Outcome, metric: str, now: datetime | None = None
) -> ExperimentRecord:
    """Return ``record`` finished with ``outcome``; a success without a usable metric is a failure."""
    now = now or datetime.now(UTC)
    started = outcome.started or record.started or now
    finished = outcome.finished or now
    if not outcome.succeeded:
        return record.evolve(
            state=ExperimentState.FAILED,
            started=started,
            finished=finished,
            error=outcome.error or "the experiment failed",
        )
    problem = metrics_problem(outcome.metrics, metric)
    if problem is not None:
        return record.evolve(
            state=ExperimentState.FAILED, started=started, finished=finished, error=problem
        )
    assert outcome.metrics is not None
    return record.evolve(
        state=ExperimentState.SUCCEEDED,
        metrics={str(k): float(v) for k, v in outcome.metrics.items()},
        started=started,
        finished=finished,
        error=None,
    )


def metrics_problem(metrics: object, metric: str) -> str | None:
    """Return why ``metrics`` breaks the experiment contract (``dict[str, float]`` with ``metric``), or None."""
    if not isinstance(metrics, Mapping):
        return f"workflow_result is {type(metrics).__name__}, not a dict[str, float] of metrics"
    bad = [k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        return f"workflow_result values must be numbers; not {sorted(map(str, bad))}"
    if metric not in metrics:
        return f"workflow_result {sorted(map(str, metrics))} lacks {metric!r}, the spec's metric"
    if not math.isfinite(float(metrics[metric])):
        return f"workflow_result {metric}={metrics[metric]} is not finite"
    return None


def summarize(
    store: ExperimentStore, tuning_id: str, spec: HyperparameterTuningSpec
) -> TuningResult:
    """Return the tuning's result from the store, saying why it stopped early, if it did."""
    records = store.load(tuning_id)
    reason = None
    failed = failed_count(records)
    if failed > spec.max_failed_experiments:
        reason = f"{failed} experiments failed; the spec tolerates {spec.max_failed_experiments}"
    elif sum(1 for r in records if r.state.finished) < spec.total_experiments():
        reason = "time budget used up or experiments left unfinished"
    return TuningResult.from_records(tuning_id, spec, records, reason)


def note_of(tuning_id: str, record: ExperimentRecord) -> str:
    """Return the note shown on an experiment's run in the Airflow UI."""
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(record.params.items()))
    return f"tuning {tuning_id}: experiment {record.index} with {params}"
