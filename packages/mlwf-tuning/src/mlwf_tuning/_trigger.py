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


class ExperimentRunsTrigger(BaseTrigger):
    """Wait in the triggerer until every run in ``run_ids`` of ``dag_id`` has ended.

    With ``end_task`` it then ends the deferred task successfully whatever the runs' states (the
    next step records the outcomes); otherwise it resumes the task. It also stops waiting when a
    run it waits for no longer exists (deleted by hand): the recording step reports that
    experiment as failed.
    """

    def __init__(
        self,
        dag_id: str,
        run_ids: Sequence[str],
        poll_interval: float = 1.0,
        end_task: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.dag_id = dag_id
        self.run_ids = list(run_ids)
        self.poll_interval = float(poll_interval)
        self.end_task = bool(end_task)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and arguments (the triggerer rebuilds the trigger from them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_ids": self.run_ids,
                "poll_interval": self.poll_interval,
                "end_task": self.end_task,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the runs' states every ``poll_interval`` seconds until all have ended."""
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        count = sync_to_async(RuntimeTaskInstance.get_dr_count)
        polls = 0
        while True:
            ended = await count(
                dag_id=self.dag_id, run_ids=self.run_ids, states=list(TERMINAL_STATES)
            )
            if ended >= len(self.run_ids):
                break
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
