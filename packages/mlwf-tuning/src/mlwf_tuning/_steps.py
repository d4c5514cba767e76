"""The steps of a tuning DAG's tasks: open the tuning, plan and create each round's runs, record, report.

Each step reads the store first, so a cleared task continues where it stopped. ``HyperparameterTuner``
builds one ``TuningSteps`` per tuning DAG and hands its bound methods to the DAG's
``TuningRoundOperator`` tasks.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk import Context

from mlwf_tuning._contract import conf_of
from mlwf_tuning._errors import TooManyFailedExperimentsError, TuningError
from mlwf_tuning._experiment_runs import ExperimentRuns, state_text
from mlwf_tuning._records import ExperimentState
from mlwf_tuning._report import XCOM_KEY, notify_result
from mlwf_tuning._rounds import (
    Outcome,
    check_failures,
    experiment_run_id,
    failed_count,
    finish_record,
    note_of,
    plan_round,
    summarize,
    tuning_id_of,
)
from mlwf_tuning._settings import experiment_timeout_s
from mlwf_tuning._spec import HyperparameterTuningSpec, resolve_method
from mlwf_tuning._store import ExperimentRun, ExperimentStore
from mlwf_tuning._trigger import ExperimentRunsTrigger, RunRequest, trigger_runs

log = logging.getLogger(__name__)


class TuningSteps:
    """What the tasks of one tuning DAG do, for a tuning of ``spec`` on experiment DAG ``experiment_dag_id``."""

    def __init__(
        self,
        spec: HyperparameterTuningSpec,
        experiment_dag_id: str,
        *,
        owns_experiment_dag: bool,
        base_conf: Mapping[str, Any],
        store: Callable[[], ExperimentStore],
        notifier: Callable[[dict[str, Any]], object] | None,
        result_task_id: str,
        poke_interval: float,
    ) -> None:
        self.spec = spec
        self.owns_experiment_dag = owns_experiment_dag
        self.base_conf = base_conf
        self.store = store
        self.notifier = notifier
        self.poke_interval = poke_interval
        self.runs = ExperimentRuns(
            experiment_dag_id, spec, result_task_id=result_task_id, poke_interval=poke_interval
        )

    def _ids(self, context: Context) -> tuple[str, str, str]:
        ti = context["ti"]
        return ti.dag_id, ti.run_id, tuning_id_of(ti.dag_id, ti.run_id)

    def _open(self, context: Context, tuning_id: str) -> None:
        target = self.runs.dag_id
        ti = context["ti"]
        try:
            experiments = ti.get_dag(target)
        except Exception as err:  # the execution API answers 404 for an unknown DAG
            raise TuningError(
                f"tuning {tuning_id!r}: the experiment DAG {target!r} is not available "
                f"({type(err).__name__}: {err}); create the constructor instance first"
            ) from err
        if self.owns_experiment_dag:
            check_own_experiment_dag(tuning_id, ti.get_dag(ti.dag_id), experiments)
        if experiments.is_paused:
            raise TuningError(
                f"tuning {tuning_id!r}: the experiment DAG {target!r} is paused; its "
                "runs would never start. Unpause it, then clear this task"
            )
        self.store().open_tuning(tuning_id, self.spec.plan_json())

    def round(
        self,
        index: int,
        context: Context,
        *,
        report_task: bool = False,
        after_round_tasks_at: int | None = None,
    ) -> ExperimentRunsTrigger | None:
        """Record what the last round left, plan round ``index``, create its runs; return what to wait on.

        ``after_round_tasks_at``: the report task's first round when earlier ``round_i`` tasks
        exist (``round_tasks`` > 1): there, it first looks whether one of them failed.
        """
        dag_id, run_id, tuning_id = self._ids(context)
        store = self.store()
        if index == after_round_tasks_at and self._earlier_round_failed(context):
            log.info("tuning %s: an earlier round failed; reporting what is recorded", tuning_id)
            return None
        if index == 0:
            self._open(context, tuning_id)
        ti = context["ti"]
        self.runs.collect(ti, store, tuning_id, final=False)
        if report_task and failed_count(store.load(tuning_id)) > self.spec.max_failed_experiments:
            return None  # the report says so, and fails the run
        check_failures(tuning_id, self.spec, store.load(tuning_id))
        upfront = resolve_method(self.spec.method).plans_upfront and self.owns_experiment_dag
        records = plan_round(
            store,
            tuning_id,
            self.spec,
            started_at=context["dag_run"].start_date,
            limit=None if self.owns_experiment_dag and upfront else self.spec.parallelism,
            upto=None if upfront else (index + 1) * self.spec.parallelism,
        )
        if not records:
            log.info("tuning %s: nothing to run in round %d", tuning_id, index)
            return None
        target = self.runs.dag_id
        runs = [
            store.assign_run(
                tuning_id,
                r.index,
                # A random part in the run id: nobody can create the run before the tuner does.
                ExperimentRun(
                    experiment_run_id(dag_id, run_id, r.index, secrets.token_hex(4)),
                    secrets.token_urlsafe(24),
                ),
            )
            for r in records
        ]
        requests = [
            RunRequest(
                run_id=run.run_id,
                conf=conf_of(r, self.base_conf, tuning_id, run.token),
                note=note_of(tuning_id, r),
            )
            for r, run in zip(records, runs, strict=True)
        ]
        existing = set(trigger_runs(target, requests))
        waiting = []
        for r, run in zip(records, runs, strict=True):
            foreign = self.runs.foreign(run) if run.run_id in existing else None
            if foreign is not None:
                store.save(tuning_id, [finish_record(r, Outcome(False, error=foreign), "")])
                log.error("experiment %d: %s", r.index, foreign)
                continue
            waiting.append(run.run_id)
            log.info(
                "experiment %d: %s -> run %s of %s%s",
                r.index,
                r.params,
                run.run_id,
                target,
                " (exists: waiting for it)" if run.run_id in existing else "",
            )
        ti.xcom_push(
            key=f"experiments_round_{index}",
            value=[
                {"index": r.index, "run_id": run.run_id, "params": r.params}
                for r, run in zip(records, runs, strict=True)
            ],
        )
        if not waiting:
            return None
        return ExperimentRunsTrigger(
            target,
            waiting,
            self.poke_interval,
            end_task=not report_task,
            stall_timeout=experiment_timeout_s(self.spec),
        )

    def record_ended(self, context: Context) -> None:
        """Record the experiments whose runs have ended (while a round waits in its task)."""
        _, _, tuning_id = self._ids(context)
        self.runs.collect(context["ti"], self.store(), tuning_id, final=False)

    def fail_stalled(self, context: Context, run_ids: Sequence[str], timeout: float) -> None:
        """Record the experiments of ``run_ids`` still going as failed: no run ended for ``timeout`` s."""
        _, _, tuning_id = self._ids(context)
        self.runs.fail_stalled(context["ti"], self.store(), tuning_id, run_ids, timeout)

    def _earlier_round_failed(self, context: Context) -> bool:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        return any(
            str(task_id).startswith("round_") and state_text(state) in ("failed", "upstream_failed")
            for task_id, state in states.items()
        )

    def report(self, context: Context) -> dict[str, Any]:
        _, _, tuning_id = self._ids(context)
        store = self.store()
        self.runs.collect(context["ti"], store, tuning_id, final=True)
        result = summarize(store, tuning_id, self.spec)
        table = result.render_table()
        log.info("tuning report\n%s", table)
        payload = result.to_dict()
        context["ti"].xcom_push(key=XCOM_KEY, value=payload)
        if self.notifier is not None:
            notify_result(self.notifier, result, dict(context))
        failed = result.count(ExperimentState.FAILED)
        if failed > self.spec.max_failed_experiments:
            last = next(
                (r.error for r in reversed(result.experiments) if r.state.value == "failed"), None
            )
            raise TooManyFailedExperimentsError(
                tuning_id, failed, self.spec.max_failed_experiments, last
            )
        if result.best_index is None:
            raise TuningError(f"tuning {tuning_id!r}: no experiment succeeded\n{table}")
        return payload


def check_own_experiment_dag(tuning_id: str, tuning_dag: Any, experiments: Any) -> None:
    """Raise ``TuningError`` unless ``experiments`` comes from the same DAG file as ``tuning_dag``.

    Both are the Task SDK's view of a DAG (``bundle_name``, ``relative_fileloc``). The tuner
    builds ``<tuning id>__experiments`` in its own file; a DAG of that id from another file is
    someone else's DAG, whose runs the tuning must neither create nor read.
    """
    mine = (getattr(tuning_dag, "bundle_name", None), getattr(tuning_dag, "relative_fileloc", None))
    theirs = (
        getattr(experiments, "bundle_name", None),
        getattr(experiments, "relative_fileloc", None),
    )
    if mine != theirs:
        raise TuningError(
            f"tuning {tuning_id!r}: DAG {experiments.dag_id!r}, which this tuning defines as its "
            f"experiment DAG, is defined by file {theirs[1]!r} of bundle {theirs[0]!r}, not by "
            f"this tuning's file {mine[1]!r} of bundle {mine[0]!r}: another DAG holds the id. "
            "Refusing to run experiments on it; rename the tuning or that DAG"
        )
