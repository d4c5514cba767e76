"""The runs of a tuning's experiment DAG, seen from a task of the tuning DAG: states and outcomes.

Collecting records each experiment whose run has ended: its metrics (XCom ``workflow_result``
of the run's result task) or why it failed. Only the run the tuner created for an experiment
counts: it carries the experiment's secret token in its ``conf``.
"""

from __future__ import annotations

import datetime
import functools
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from mlwf_tuning._contract import WORKFLOW_RESULT_KEY, WORKFLOW_TIMING_KEY, token_of
from mlwf_tuning._errors import TuningError
from mlwf_tuning._records import ExperimentState
from mlwf_tuning._rounds import Outcome, finish_record
from mlwf_tuning._settings import experiment_timeout_s
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._store import ExperimentRun, ExperimentStore
from mlwf_tuning._trigger import TERMINAL_STATES, run_conf

log = logging.getLogger(__name__)


class ExperimentRuns:
    """The runs of experiment DAG ``dag_id``: read through a tuning task's ``ti`` (the execution API)."""

    def __init__(
        self,
        dag_id: str,
        spec: HyperparameterTuningSpec,
        *,
        result_task_id: str,
        poke_interval: float,
    ) -> None:
        self.dag_id = dag_id
        self.spec = spec
        self.result_task_id = result_task_id
        self.poke_interval = poke_interval

    def fail_stalled(
        self,
        ti: Any,
        store: ExperimentStore,
        tuning_id: str,
        run_ids: Sequence[str],
        timeout: float,
    ) -> None:
        """Record the experiments of ``run_ids`` still going as failed: no run ended for ``timeout`` s."""
        self.collect(ti, store, tuning_id, final=False)
        stalled = set(run_ids)
        for record in [r for r in store.load(tuning_id) if r.state == ExperimentState.RUNNING]:
            run = store.experiment_run(tuning_id, record.index)
            if run is None or run.run_id not in stalled:
                continue
            error = stalled_error(run.run_id, self.dag_id, timeout)
            store.save(tuning_id, [finish_record(record, Outcome(False, error=error), "")])
            log.error("experiment %d: %s", record.index, error)

    def collect(self, ti: Any, store: ExperimentStore, tuning_id: str, *, final: bool) -> int:
        """Record every running experiment whose run has ended; return how many were recorded.

        With ``final``, also wait for runs still going (at most ``experiment_timeout_s`` without
        one ending) and fail experiments whose run does not exist; otherwise those stay running
        (the round hands them out again).
        """
        target = self.dag_id
        recorded = 0
        timeout = experiment_timeout_s(self.spec) if final else 0.0
        progressed = time.monotonic()
        # Loaded once: an experiment that finished its own record (early stopping marks it
        # pruned) usually did so before its run ended, so it is not running here.
        for record in [r for r in store.load(tuning_id) if r.state == ExperimentState.RUNNING]:
            run = store.experiment_run(tuning_id, record.index)
            state = None if run is None else self.state(ti, run.run_id)
            child = "(none)" if run is None else run.run_id
            where = f"run {child!r} of DAG {target!r}"
            if run is None or state is None:
                if not final:
                    continue
                outcome = Outcome(False, error=f"{where} was never created or was deleted")
            else:
                if state not in TERMINAL_STATES:
                    if not final:
                        continue
                    while state not in TERMINAL_STATES:  # a run found still going after a resume
                        if time.monotonic() - progressed >= timeout:
                            break
                        time.sleep(self.poke_interval)
                        state = self.state(ti, child) or "deleted"
                progressed = time.monotonic()
                # Only the run the tuner created (its token in the conf) has results that count.
                foreign = self.foreign(run) if state in TERMINAL_STATES else None
                if state not in TERMINAL_STATES:
                    outcome = Outcome(False, error=stalled_error(child, target, timeout))
                elif foreign is not None:
                    outcome = Outcome(False, error=foreign)
                else:
                    outcome = self.outcome(ti, child, state)
                if not outcome.succeeded:
                    # A pruned experiment ends without workflow_result, after finishing its own
                    # record (maybe after the load above): keep that record.
                    current = {r.index: r for r in store.load(tuning_id)}.get(record.index, record)
                    if current.state.finished:
                        log.info(
                            "experiment %d (%s): %s", current.index, child, current.state.value
                        )
                        continue
            done = finish_record(record, outcome, self.spec.metric)
            store.save(tuning_id, [done])  # one by one: nothing finished is lost if this task dies
            recorded += 1
            log.info(
                "experiment %d (%s): %s %s%s",
                done.index,
                child,
                done.state.value,
                done.metrics.get(self.spec.metric, ""),
                f" ({done.error})" if done.error else "",
            )
        return recorded

    def state(self, ti: Any, run_id: str) -> str | None:
        """Return the state of experiment run ``run_id``, or None when it does not exist."""
        target = self.dag_id
        try:
            state = ti.get_dagrun_state(dag_id=target, run_id=run_id)
        except Exception:  # the execution API answers 404 for a run that does not exist
            state = None
        if state is None and ti.get_dr_count(dag_id=target, run_ids=[run_id]) == 0:
            return None
        return state_text(state)

    def outcome(self, ti: Any, run_id: str, state: str) -> Outcome:
        target = self.dag_id
        where = f"run {run_id!r} of DAG {target!r}"
        if state != "success":
            return Outcome(False, error=f"{where} ended {state}{self._failed_tasks(ti, run_id)}")
        pull = functools.partial(
            ti.xcom_pull, task_ids=self.result_task_id, dag_id=target, run_id=run_id
        )
        metrics = pull(key=WORKFLOW_RESULT_KEY)
        if metrics is None:
            return Outcome(
                False,
                error=f"{where} succeeded but task {self.result_task_id!r} pushed no XCom "
                f"{WORKFLOW_RESULT_KEY!r} (the experiment contract)",
            )
        timing = pull(key=WORKFLOW_TIMING_KEY) or {}
        return Outcome(
            True,
            metrics=metrics,
            started=_parse_time(timing.get("started")),
            finished=_parse_time(timing.get("finished")),
        )

    def _failed_tasks(self, ti: Any, run_id: str) -> str:
        try:
            states = ti.get_task_states(dag_id=self.dag_id, run_ids=[run_id])
        except Exception:  # only decoration of the error message: never fail the recording
            return ""
        failed = sorted(
            str(task_id)
            for by_task in states.values()
            for task_id, state in by_task.items()
            if state_text(state) in ("failed", "upstream_failed")
        )
        return f" (failed tasks: {', '.join(failed)})" if failed else ""

    def foreign(self, run: ExperimentRun) -> str | None:
        """Return why the existing run ``run`` is not the one the tuner created, or None when it is."""
        target = self.dag_id
        try:
            token = token_of(run_conf(target, run.run_id))
        except TuningError as err:
            return f"run {run.run_id!r} of DAG {target!r} could not be checked: {err}"
        if not isinstance(token, str) or not secrets.compare_digest(
            token.encode(),
            run.token.encode(),  # bytes: str must be ASCII for compare_digest
        ):
            return (
                f"run {run.run_id!r} of DAG {target!r} exists but was not created by this "
                "tuning (its conf lacks the tuning's token): not adopted, the experiment fails"
            )
        return None


def stalled_error(run_id: str, dag_id: str, timeout: float) -> str:
    """Say why an experiment whose run stopped ending was recorded as failed."""
    return (
        f"run {run_id!r} of DAG {dag_id!r} had not ended after {timeout:.0f} s in which no "
        "experiment run of its round ended (experiment_timeout_s); recorded as failed. The run "
        "itself is left as it is: mark it failed in the Airflow UI if it is stuck"
    )


def state_text(state: object) -> str:
    """Return a state's plain value (the Task SDK hands back ``DagRunState`` enums)."""
    return str(getattr(state, "value", state))


def _parse_time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
