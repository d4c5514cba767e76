"""``TuningRoundOperator``: the task of a tuning DAG that runs its rounds, waiting in the task or the triggerer."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from mlwf_tuning._trigger import TERMINAL_STATES, ExperimentRunsTrigger

log = logging.getLogger(__name__)


class TuningRoundOperator(BaseOperator):
    """Rounds of a tuning DAG: record, plan, create the experiment runs, wait; (last) report.

    For each round index in ``rounds``, ``step(index, context)`` records, plans and creates the
    runs, and returns the trigger that waits for them (or ``None``: nothing to run). The task
    first waits in its own process, polling every 0.5 s for up to ``wait_in_task_s`` seconds,
    calling ``progress(context)`` (records what has ended) as runs end: short experiments cost
    no deferral hop. Longer ones free the worker slot: the task defers to the trigger, which ends
    it from the triggerer (the task's last round, when it does not report) or resumes it for
    its next round or ``finish(context)`` (the last task: the report). When the trigger gives up
    on runs that stopped ending, ``stalled(context, run_ids, timeout)`` records them.
    """

    ui_color = "#e8f0fe"
    #: Seconds between polls while waiting in the task's own process.
    #: (0.2 s slowed the experiments down: every poll is a query of the metadata database.)
    IN_TASK_POLL_S = 0.5

    def __init__(
        self,
        *,
        step: Callable[[int, Context], ExperimentRunsTrigger | None],
        rounds: range = range(1),
        finish: Callable[[Context], Any] | None = None,
        progress: Callable[[Context], Any] | None = None,
        stalled: Callable[[Context, Sequence[str], float], Any] | None = None,
        wait_in_task_s: float = 30.0,
        poke_interval: float = 0.5,
        warm_imports: Sequence[str] = ("optuna",),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._warm_imports = tuple(warm_imports)
        self._step = step
        self._rounds = rounds
        self._finish = finish
        self._progress = progress
        self._stalled = stalled
        self._wait_in_task_s = wait_in_task_s
        self._poke_interval = poke_interval

    def execute(self, context: Context) -> Any:
        """Run the task's rounds; wait for each round's runs here briefly, else in the triggerer."""
        self._start_warm_import()
        return self._rounds_from(context, self._rounds.start)

    def execute_complete(
        self, context: Context, event: Any = None, next_round: int | None = None
    ) -> Any:
        """Resumed once a round's runs have ended (or stalled): go on with the next round, then finish."""
        self._start_warm_import()  # a resumed task is a new process
        if isinstance(event, dict) and event.get("stalled") and self._stalled is not None:
            self._stalled(context, list(event.get("run_ids", ())), float(event["timeout"]))
        return self._rounds_from(context, self._rounds.stop if next_round is None else next_round)

    def _start_warm_import(self) -> None:
        # Import the planner's libraries (Optuna; scikit-learn for GP) while the step opens the
        # tuning and reads the records (network and database waits): the first plan starts sooner.
        threading.Thread(
            target=_warm_import, args=(self._warm_imports,), name="mlwf-tuning-import", daemon=True
        ).start()

    def _rounds_from(self, context: Context, first: int) -> Any:
        for index in range(first, self._rounds.stop):
            try:
                trigger = self._step(index, context)
                ended = trigger is None or self._ended_in_task(context, trigger)
            except Exception as err:
                self._report_after_failure(context, index, err)
                raise
            if ended:
                continue
            assert trigger is not None
            # Resume the task when it has work left; else the triggerer ends it (no worker).
            trigger.end_task = index + 1 >= self._rounds.stop and self._finish is None
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                kwargs={"next_round": index + 1},
            )
        return self._finish(context) if self._finish is not None else None

    def _report_after_failure(self, context: Context, index: int, err: Exception) -> None:
        """A round failed in the task that also reports: report what is recorded, then fail.

        As a report task after a failed round task would (trigger rule ``all_done``): the XCom
        ``tuning_result`` and the notifier still get the result so far. The round's error is what
        fails the task; a report that fails too is logged.
        """
        if self._finish is None:
            return
        log.error(
            "round %d failed (%s: %s); reporting what is recorded, then failing the task",
            index,
            type(err).__name__,
            err,
        )
        try:
            self._finish(context)
        except Exception:
            log.exception("the report after the failed round %d failed too", index)

    def _ended_in_task(self, context: Context, trigger: ExperimentRunsTrigger) -> bool:
        ti = context["ti"]
        deadline = time.monotonic() + self._wait_in_task_s
        seen = 0
        while True:
            ended = ti.get_dr_count(
                dag_id=trigger.dag_id, run_ids=trigger.run_ids, states=list(TERMINAL_STATES)
            )
            if ended >= len(trigger.run_ids):
                return True
            if ended > seen and self._progress is not None:
                self._progress(context)  # record what ended now, while the rest still run
                seen = ended
            if time.monotonic() >= deadline:
                log.info(
                    "%d of %d experiment runs still going after %.0f s: waiting in the triggerer",
                    len(trigger.run_ids) - ended,
                    len(trigger.run_ids),
                    self._wait_in_task_s,
                )
                return False
            time.sleep(self.IN_TASK_POLL_S)


def _warm_import(modules: Sequence[str]) -> None:
    """Import ``modules`` for their side effect (loaded before planning needs them); never raise."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the planning's own import reports the problem, with its context
            log.debug("could not import %s ahead of planning", name, exc_info=True)
            return
