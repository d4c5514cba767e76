"""Triggering experiment runs from a task, and waiting for them in the triggerer.

A round of the tuning DAG creates all of its experiment runs from one task, then defers to
``ExperimentRunsTrigger``, which polls the runs' states from the triggerer and ends the task
there (``TaskSuccessEvent``) once every run has finished: no worker slot is held while the
experiments run, and no worker is needed to resume the task.

Creating several runs from one task uses the Task SDK's ``TriggerDagRun`` message, the one
``TriggerDagRunOperator`` sends (Airflow 3 tasks have no database access). It is not a public
API, so it is isolated here and fails with a clear ``TuningError`` if the Task SDK changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from mlwf_tuning._errors import TuningError

#: Dag run states in which an experiment run has ended.
TERMINAL_STATES = ("success", "failed")


@dataclass(frozen=True)
class RunRequest:
    """One experiment run to create: its run id, ``conf`` and note."""

    run_id: str
    conf: dict[str, Any]
    note: str


def trigger_runs(dag_id: str, requests: Sequence[RunRequest]) -> list[str]:
    """Create the runs of ``dag_id`` (inside a running task); return the run ids that already existed.

    An existing run is left as it is (a resumed round hands out its unfinished experiments again
    under the same run ids), so calling this twice never starts an experiment twice.
    """
    try:
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
    except ImportError as err:  # pragma: no cover - guards a Task SDK change
        raise TuningError(
            f"this Airflow's Task SDK cannot trigger runs from a task ({err}); "
            "mlwf-tuning supports Airflow 3.3"
        ) from err
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        raise TuningError("experiment runs can only be triggered from a running Airflow task")
    existing = []
    for request in requests:
        answer = comms.send(
            TriggerDagRun(
                dag_id=dag_id,
                run_id=request.run_id,
                conf=request.conf,
                note=request.note,
                reset_dag_run=False,
            )
        )
        if isinstance(answer, ErrorResponse):
            if answer.error == ErrorType.DAGRUN_ALREADY_EXISTS:
                existing.append(request.run_id)
                continue
            raise TuningError(
                f"could not create run {request.run_id!r} of DAG {dag_id!r}: "
                f"{answer.error} {answer.detail or ''}".rstrip()
            )
    return existing


def run_conf(dag_id: str, run_id: str) -> dict[str, Any] | None:
    """Return the ``conf`` of run ``run_id`` of ``dag_id`` (inside a running task), or None if it has none.

    The Task SDK's ``GetDagRun`` message (the execution API's ``dag-runs/{dag_id}/{run_id}``).
    """
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import ErrorResponse, GetDagRun
    except ImportError as err:  # pragma: no cover - guards a Task SDK change
        raise TuningError(f"this Airflow's Task SDK cannot read a run's conf ({err})") from err
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        raise TuningError("a run's conf can only be read from a running Airflow task")
    answer = comms.send(GetDagRun(dag_id=dag_id, run_id=run_id))
    if isinstance(answer, ErrorResponse):
        raise TuningError(
            f"could not read run {run_id!r} of DAG {dag_id!r}: "
            f"{answer.error} {answer.detail or ''}".rstrip()
        )
    conf = getattr(answer, "conf", None)
    return dict(conf) if isinstance(conf, dict) else None


class ExperimentRunsTrigger(BaseTrigger):
    """Wait in the triggerer until every run in ``run_ids`` of ``dag_id`` has ended.

    With ``end_task`` it then ends the deferred task successfully whatever the runs' states (the
    next step records the outcomes); otherwise it resumes the task. It also stops waiting when a
    run it waits for no longer exists (deleted by hand): the recording step reports that
    experiment as failed. With ``stall_timeout``, when no run has ended for that many seconds it
    stops waiting and resumes the task with ``{"stalled": True, "run_ids": [...]}`` (whatever
    ``end_task`` says), so the task records the runs still going as failed: a stuck experiment
    never holds a tuning forever.
    """

    def __init__(
        self,
        dag_id: str,
        run_ids: Sequence[str],
        poll_interval: float = 1.0,
        end_task: bool = True,
        stall_timeout: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.dag_id = dag_id
        self.run_ids = list(run_ids)
        self.poll_interval = float(poll_interval)
        self.end_task = bool(end_task)
        self.stall_timeout = None if stall_timeout is None else float(stall_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and arguments (the triggerer rebuilds the trigger from them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_ids": self.run_ids,
                "poll_interval": self.poll_interval,
                "end_task": self.end_task,
                "stall_timeout": self.stall_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the runs' states every ``poll_interval`` seconds until all have ended."""
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        count = sync_to_async(RuntimeTaskInstance.get_dr_count)
        polls = 0
        seen, progressed = -1, time.monotonic()
        while True:
            ended = await count(
                dag_id=self.dag_id, run_ids=self.run_ids, states=list(TERMINAL_STATES)
            )
            if ended >= len(self.run_ids):
                break
            if ended != seen:
                seen, progressed = ended, time.monotonic()
            elif (
                self.stall_timeout is not None
                and time.monotonic() - progressed >= self.stall_timeout
            ):
                self.log.warning(
                    "no run of %s this round waits for ended in %.0f s: resuming the task",
                    self.dag_id,
                    self.stall_timeout,
                )
                yield TriggerEvent(  # type: ignore[no-untyped-call]  # Airflow's TriggerEvent is untyped
                    {"stalled": True, "run_ids": self.run_ids, "timeout": self.stall_timeout}
                )
                return
            polls += 1
            # Now and then, check that no run was deleted: its end would never come.
            if polls % 30 == 0 and await count(dag_id=self.dag_id, run_ids=self.run_ids) < len(
                self.run_ids
            ):
                self.log.warning("a run of %s this round waits for no longer exists", self.dag_id)
                break
            await asyncio.sleep(self.poll_interval)
        # End the task here (no worker needed), or resume it when it has work left (the report).
        if self.end_task:
            yield TaskSuccessEvent()
        else:
            yield TriggerEvent({"ended": len(self.run_ids)})  # type: ignore[no-untyped-call]
