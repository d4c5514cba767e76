"""Local mode: ``search(spec, objective)`` plans, runs and records experiments in this process.

It uses exactly the planning (``plan``) and recording (``ExperimentStore``) of the tuning DAG, so
a local search and a DAG tuning with the same spec plan the same experiments. Experiments run in
waves of ``spec.parallelism``: a wave is planned (or taken from the up-front plan), marked
running, run on a pool, and recorded before the next wave starts.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

from mlwf_tuning._errors import ExperimentPrunedError, TooManyFailedExperimentsError
from mlwf_tuning._planner import plan
from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._report import TuningResult, notify_result
from mlwf_tuning._spec import Direction, HyperparameterTuningSpec, MedianStopping
from mlwf_tuning._stopping import Reporter
from mlwf_tuning._store import ExperimentStore, InMemoryExperimentStore

Objective = Callable[..., Mapping[str, float]]


def _wants_reporter(objective: Objective) -> bool:
    try:
        params = list(inspect.signature(objective).parameters.values())
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def run_experiment(
    objective: Objective,
    record: ExperimentRecord,
    metric: str,
    direction: Direction,
    rule: MedianStopping | None,
    finished_curves: Sequence[Mapping[int, float]],
    wants_reporter: bool,
) -> ExperimentRecord:
    """Run one experiment and return its finished record (module-level: it runs in process pools).

    An exception from the objective makes a failed experiment; ``ExperimentPrunedError`` a pruned one.
    ``KeyboardInterrupt`` and ``SystemExit`` propagate: the experiment stays unfinished.
    """
    reporter = Reporter(rule, direction, finished_curves)
    started = datetime.now(UTC)
    try:
        raw = (
            objective(dict(record.params), reporter)
            if wants_reporter
            else objective(dict(record.params))
        )
        metrics = _check_metrics(raw, metric)
    except ExperimentPrunedError as stop:
        return record.evolve(
            state=ExperimentState.PRUNED,
            intermediate=reporter.intermediate,
            started=started,
            finished=datetime.now(UTC),
            error=str(stop),
        )
    except Exception as exc:
        return record.evolve(
            state=ExperimentState.FAILED,
            intermediate=reporter.intermediate,
            started=started,
            finished=datetime.now(UTC),
            error=f"{type(exc).__name__}: {exc}",
        )
    return record.evolve(
        state=ExperimentState.SUCCEEDED,
        metrics=metrics,
        intermediate=reporter.intermediate,
        started=started,
        finished=datetime.now(UTC),
        error=None,
    )


def _check_metrics(raw: object, metric: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"the objective returned {type(raw).__name__}; expected a dict of metrics")
    if metric not in raw:
        raise KeyError(
            f"the objective returned metrics {sorted(raw)} without {metric!r}, the spec's metric"
        )
    metrics = {str(k): float(v) for k, v in raw.items()}
    if not math.isfinite(metrics[metric]):
        raise ValueError(f"the objective returned {metric}={metrics[metric]}, which is not finite")
    return metrics


def _failures(records: Sequence[ExperimentRecord]) -> tuple[int, str | None]:
    failed = [r for r in records if r.state == ExperimentState.FAILED]
    return len(failed), (failed[-1].error if failed else None)


def _check_failures(
    tuning_id: str, spec: HyperparameterTuningSpec, records: Sequence[ExperimentRecord]
) -> None:
    failed, last = _failures(records)
    if failed > spec.max_failed_experiments:
        raise TooManyFailedExperimentsError(tuning_id, failed, spec.max_failed_experiments, last)


def search(
    spec: HyperparameterTuningSpec,
    objective: Objective,
    store: ExperimentStore | None = None,
    *,
    tuning_id: str | None = None,
    pool: Literal["thread", "process"] = "thread",
    notifier: Callable[[dict[str, Any]], object] | None = None,
) -> TuningResult:
    """Run the tuning ``spec`` in this process, with ``objective(params) -> {metric: value}``.

    ``objective`` may take a second argument, a ``Reporter``, to report intermediate values
    (``reporter.report(step, value)``) for early stopping. An exception in it fails the
    experiment; more failures than ``spec.max_failed_experiments`` raise
    ``TooManyFailedExperimentsError``. With ``spec.parallelism > 1`` experiments run on a thread pool
    (``pool="thread"``, the default: any callable, GIL-releasing or I/O-bound work) or a process
    pool (``pool="process"``: CPU-bound pure Python; the objective must be picklable).

    Calling ``search`` again with the same ``store`` and ``tuning_id`` (by default derived from
    the spec) resumes: finished experiments are kept, unfinished ones run again with the same
    hyperparameters, and the tuning stops at ``spec.total_experiments()`` experiments.
    """
    if pool not in ("thread", "process"):
        raise ValueError(f"pool must be 'thread' or 'process'; got {pool!r}")
    store = store if store is not None else InMemoryExperimentStore()
    tuning_id = tuning_id or f"search-{spec.fingerprint()}"
    store.open_tuning(tuning_id, spec.plan_json())
    wants_reporter = _wants_reporter(objective)
    deadline = None if spec.time_budget_s is None else time.monotonic() + spec.time_budget_s
    records = {r.index: r for r in store.load(tuning_id)}
    _check_failures(tuning_id, spec, list(records.values()))
    stopped_reason = None
    executor: Executor | None = None
    if spec.parallelism > 1:
        executor = (ThreadPoolExecutor if pool == "thread" else ProcessPoolExecutor)(
            spec.parallelism
        )
    try:
        while True:
            ordered = [records[i] for i in sorted(records)]
            pending = [r for r in ordered if not r.state.finished]
            if not pending:
                new = plan(spec, ordered)
                if not new:
                    break
                store.save(tuning_id, new)
                records.update({r.index: r for r in new})
                pending = new
            if deadline is not None and time.monotonic() >= deadline:
                stopped_reason = f"time budget of {spec.time_budget_s} s used up"
                break
            wave = [
                r.evolve(state=ExperimentState.RUNNING, started=datetime.now(UTC))
                for r in pending[: spec.parallelism]
            ]
            store.save(tuning_id, wave)
            records.update({r.index: r for r in wave})
            curves = [dict(r.intermediate) for r in ordered if r.state == ExperimentState.SUCCEEDED]
            args = (spec.metric, spec.direction, spec.early_stopping, curves, wants_reporter)
            try:
                done = _run_wave(executor, objective, wave, args)
            except _WaveInterrupted as stop:
                # Keep what finished before the interruption; the rest stays running and reruns on resume.
                store.save(tuning_id, stop.finished)
                assert stop.__cause__ is not None
                raise stop.__cause__ from None
            store.save(tuning_id, done)
            records.update({r.index: r for r in done})
            _check_failures(tuning_id, spec, list(records.values()))
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    result = TuningResult.from_records(tuning_id, spec, store.load(tuning_id), stopped_reason)
    if notifier is not None:
        notify_result(notifier, result)
    return result


def _run_wave(
    executor: Executor | None,
    objective: Objective,
    wave: Sequence[ExperimentRecord],
    args: tuple[str, Direction, MedianStopping | None, list[dict[int, float]], bool],
) -> list[ExperimentRecord]:
    """Run a wave and return its finished records; raise ``_WaveInterrupted`` holding them on an interrupt."""
    done: list[ExperimentRecord] = []
    if executor is None:
        for record in wave:
            try:
                done.append(run_experiment(objective, record, *args))
            except BaseException as exc:  # KeyboardInterrupt/SystemExit: re-raised by search
                raise _WaveInterrupted(done) from exc
        return done
    futures: list[Future[ExperimentRecord]] = [
        executor.submit(run_experiment, objective, r, *args) for r in wave
    ]
    interrupt: BaseException | None = None
    for future in futures:
        try:
            done.append(future.result())
        except BaseException as exc:  # KeyboardInterrupt/SystemExit from a worker: re-raised below
            interrupt = interrupt or exc
    if interrupt is not None:
        raise _WaveInterrupted(done) from interrupt
    return done


class _WaveInterrupted(BaseException):
    """A wave stopped early; ``finished`` holds the experiments that did finish."""

    def __init__(self, finished: list[ExperimentRecord]) -> None:
        super().__init__("wave interrupted")
        self.finished = finished
