"""``HyperparameterTuner``: a tuning DAG whose experiments are triggered runs of a constructor's DAG.

See the design note (docs/mlwf-tuning/design.md)::

    round_0 ─► round_1 ─► … ─► round_k ─► report

Each round task records the outcomes the last round left, plans its experiments, creates one
run of the experiment DAG per experiment (``conf`` = the experiment's hyperparameters, run id
``exp0003__<tuning dag>__<tuning run>``) and defers to the triggerer until they have all ended.
By default the experiment DAG is the tuner's own (``<tuning dag>__experiments``, its
``max_active_runs`` the spec's parallelism), so grid and random searches are one round whose
runs the scheduler starts as slots free up; Bayesian methods take ``ceil(n_experiments /
parallelism)`` rounds, each planned from every result so far.
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator, Context
from mlwf_constructors import DagConstructor, ParameterValidationError

from mlwf_tuning._errors import TooManyFailedExperiments, TuningError
from mlwf_tuning._methods import resolve_method
from mlwf_tuning._notify import notify_result
from mlwf_tuning._records import ExperimentState
from mlwf_tuning._result import XCOM_KEY
from mlwf_tuning._rounds import (
    Outcome,
    check_failures,
    conf_of,
    experiment_run_id,
    failed_count,
    finish_record,
    note_of,
    plan_round,
    summarize,
    token_of,
    tuning_id_of,
)
from mlwf_tuning._space import Categorical, FloatRange, IntRange
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._store import ExperimentRun, ExperimentStore, SqlExperimentStore
from mlwf_tuning._trigger import (
    TERMINAL_STATES,
    ExperimentRunsTrigger,
    RunRequest,
    run_conf,
    trigger_runs,
)
from mlwf_tuning._workflow import WORKFLOW_RESULT_KEY, WORKFLOW_TIMING_KEY

log = logging.getLogger(__name__)

#: ``[mlwf_tuning] store_url``: where tuning DAGs record experiments (see ``default_store_url``).
CONFIG_SECTION = "mlwf_tuning"
#: The id of the experiment DAG a tuner builds for itself: ``<tuning dag id>__experiments``.
EXPERIMENT_DAG_SUFFIX = "__experiments"
#: The most round tasks a tuning DAG has: beyond, each task runs several planning rounds, so a
#: tuning of 10,000 one-at-a-time Bayesian experiments is still a DAG of 16 tasks.
MAX_ROUND_TASKS = 16
#: The default of ``[mlwf_tuning] experiment_timeout_s``: how long a round waits without any of
#: its experiment runs ending before it records those still going as failed (a day).
DEFAULT_EXPERIMENT_TIMEOUT_S = 86_400.0


class TuningDefinitionError(TuningError, ValueError):
    """A tuner does not fit its constructor (unknown parameter, incompatible range, bad setting)."""


def check_spec_fits(constructor: DagConstructor, spec: HyperparameterTuningSpec) -> None:
    """Raise ``TuningDefinitionError`` unless every hyperparameter is a parameter of ``constructor`` that accepts its values."""
    label = f"constructor {constructor.name or type(constructor).__qualname__!r}"
    declared = {p.name: p for p in constructor.parameters}
    for name, hp in spec.hyperparameters.items():
        if name not in declared:
            raise TuningDefinitionError(
                f"hyperparameter {name!r} is not a parameter of {label} "
                f"(its parameters: {', '.join(declared) or 'none'})"
            )
        param = declared[name]
        if isinstance(hp, Categorical):
            samples: list[Any] = list(hp.choices)
        elif isinstance(hp, IntRange):
            samples = [hp.low, hp.high]
        elif isinstance(hp, FloatRange):
            samples = [float(hp.low), float(hp.high)]
        else:  # pragma: no cover - the spec's union is closed
            samples = []
        for value in samples:
            try:
                param.validate(value)
            except ParameterValidationError as err:
                raise TuningDefinitionError(
                    f"hyperparameter {name!r} ({type(hp).__name__}) can take {value!r}, which "
                    f"{label} refuses: {err}"
                ) from None


#: Executors whose tasks all run on the host of the scheduler: a SQLite file there is shared.
#: (Airflow 3 has no Sequential or Debug executor any more.)
_SINGLE_HOST_EXECUTORS = frozenset({"LocalExecutor"})
#: The default store's file in ``$AIRFLOW_HOME`` on a single-host executor.
DEFAULT_STORE_FILE = "mlwf_tuning.db"


def default_store_url() -> str:
    """Return ``[mlwf_tuning] store_url``; else, on a single-host executor, a SQLite file in ``$AIRFLOW_HOME``.

    Not the Airflow metadata database: Airflow 3 task processes may not reach it (the Task SDK
    replaces ``[database] sql_alchemy_conn`` in every task process). With an executor whose
    tasks run on several hosts (Celery, Kubernetes, ...) a file would not be shared, so
    ``store_url`` must then name a shared database; the error says so.
    """
    from airflow.configuration import conf

    url = conf.get(CONFIG_SECTION, "store_url", fallback=None)
    if url:
        return url
    executors = [
        e.strip().split(":")[-1].rsplit(".", 1)[-1]
        for e in (conf.get("core", "executor", fallback="") or "").split(",")
        if e.strip()
    ]
    if executors and all(e in _SINGLE_HOST_EXECUTORS for e in executors):
        from airflow.configuration import AIRFLOW_HOME

        home = Path(os.environ.get("AIRFLOW_HOME") or AIRFLOW_HOME).expanduser().resolve()
        return f"sqlite:///{home / DEFAULT_STORE_FILE}"
    raise TuningError(
        f"no experiment store: set [{CONFIG_SECTION}] store_url (env "
        f"AIRFLOW__{CONFIG_SECTION.upper()}__STORE_URL) to a SQLAlchemy URL of a database every "
        f"worker can reach; the executor {', '.join(executors) or '(none)'} runs tasks on several "
        "hosts, and Airflow 3 tasks may not use the metadata database"
    )


@functools.cache
def _store(url: str) -> SqlExperimentStore:
    return SqlExperimentStore(url)


class HyperparameterTuner:
    """Tune a DAG constructor: ``HyperparameterTuner(constructor, spec).build_dag(dag_id)``.

    Each experiment is a run of an experiment DAG triggered with ``conf`` = ``base_conf`` plus
    the experiment's hyperparameters; the tuner reads XCom ``workflow_result`` of task
    ``result_task_id``. By default the tuner builds its own experiment DAG,
    ``<dag_id>__experiments`` (``constructor.build`` with ``base_conf``, ``max_active_runs`` =
    ``parallelism``), and creates every run of a round at once: Airflow's scheduler starts the
    next experiment the moment one ends. With ``instance_id``, the experiments are runs of that
    existing instance (built elsewhere or created through mlwf-constructors, possibly run by
    others too), handed out ``parallelism`` at a time. Experiments are recorded in ``store``
    (default: a ``SqlExperimentStore`` on ``[mlwf_tuning] store_url``, else on a single-host
    executor ``$AIRFLOW_HOME/mlwf_tuning.db``). ``notifier`` (any Airflow notifier) receives the report.
    """

    def __init__(
        self,
        constructor: DagConstructor,
        spec: HyperparameterTuningSpec,
        *,
        instance_id: str | None = None,
        base_conf: Mapping[str, Any] | None = None,
        result_task_id: str = WORKFLOW_RESULT_KEY,
        store: ExperimentStore | str | None = None,
        notifier: Callable[[dict[str, Any]], object] | None = None,
        poke_interval: float = 0.5,
        wait_in_task_s: float = 30.0,
    ) -> None:
        if not isinstance(constructor, DagConstructor):
            raise TuningDefinitionError(
                f"constructor must be a DagConstructor instance, got {type(constructor).__name__}"
            )
        check_spec_fits(constructor, spec)
        base = dict(base_conf or {})
        if base:
            try:
                constructor.validate(base)
            except ParameterValidationError as err:
                raise TuningDefinitionError(f"base_conf is invalid: {err}") from None
        if not 0.2 <= poke_interval <= 600:
            raise TuningDefinitionError(
                f"poke_interval must be between 0.2 and 600 s, got {poke_interval}"
            )
        if not 0 <= wait_in_task_s <= 3600:
            raise TuningDefinitionError(
                f"wait_in_task_s must be between 0 and 3600 s, got {wait_in_task_s}"
            )
        if instance_id is not None and not instance_id:
            raise TuningDefinitionError("instance_id must be a DAG id, or None for an own DAG")
        self.constructor = constructor
        self.spec = spec
        self.instance_id = instance_id
        self.base_conf = base
        self.result_task_id = result_task_id
        self._store = store
        self.notifier = notifier
        self.poke_interval = float(poke_interval)
        self.wait_in_task_s = float(wait_in_task_s)
        #: The experiment DAG's id, known once ``build_dag`` ran.
        self.experiment_dag_id: str | None = instance_id
        #: The experiment DAG the tuner built (``None`` with ``instance_id``).
        self.experiment_dag: DAG | None = None

    @property
    def owns_experiment_dag(self) -> bool:
        """Return whether the tuner builds its own experiment DAG (no ``instance_id`` given)."""
        return self.instance_id is None

    def store(self) -> ExperimentStore:
        """Return the experiment store (opened lazily: in the task that needs it)."""
        if self._store is None or isinstance(self._store, str):
            return _store(self._store or default_store_url())
        return self._store

    def rounds(self) -> int:
        """Return the number of planning rounds (each plans, runs and records a batch of experiments)."""
        if resolve_method(self.spec.method).plans_upfront and self.owns_experiment_dag:
            return 1
        return math.ceil(self.spec.total_experiments() / self.spec.parallelism)

    def round_tasks(self) -> int:
        """Return the number of round tasks of the DAG: one per round, at most ``MAX_ROUND_TASKS``."""
        return min(self.rounds(), MAX_ROUND_TASKS)

    def build_dag(self, dag_id: str, **dag_kwargs: Any) -> DAG:
        """Return the tuning DAG; ``dag_kwargs`` go to ``DAG`` (schedule defaults to None).

        Without ``instance_id`` this also builds the experiment DAG ``<dag_id>__experiments``
        (registered in the DAG file being parsed, unpaused on creation; also returned by
        ``self.experiment_dag``).
        """
        spec = self.spec
        if self.owns_experiment_dag:
            self.experiment_dag_id = f"{dag_id}{EXPERIMENT_DAG_SUFFIX}"
            self.experiment_dag = self._build_experiment_dag(self.experiment_dag_id)
        target = self.experiment_dag_id
        assert target is not None
        dag_kwargs.setdefault("schedule", None)
        dag_kwargs.setdefault("start_date", datetime.datetime(2026, 1, 1, tzinfo=UTC))
        dag_kwargs.setdefault("catchup", False)
        dag_kwargs.setdefault("max_active_runs", 1)
        dag_kwargs.setdefault("tags", ["mlwf-tuning"])
        dag_kwargs.setdefault(
            "description",
            f"tune {target} ({spec.method}, {spec.total_experiments()} experiments, "
            f"{spec.direction} {spec.metric})",
        )
        rounds, tasks = self.rounds(), self.round_tasks()
        with DAG(dag_id, **dag_kwargs) as dag:
            previous: BaseOperator | None = None
            for i in range(tasks):
                last = i == tasks - 1
                step = TuningRoundOperator(
                    # The last task also reports, and runs whatever came before (all_done).
                    task_id="report" if last else f"round_{i}",
                    # Rounds spread evenly over the tasks: a large tuning stays a small DAG.
                    rounds=range(i * rounds // tasks, (i + 1) * rounds // tasks),
                    step=functools.partial(self._round, report_task=last),
                    finish=self._report if last else None,
                    progress=self._record_ended,
                    stalled=self._fail_stalled,
                    wait_in_task_s=self.wait_in_task_s,
                    poke_interval=self.poke_interval,
                    trigger_rule="all_done" if last else "all_success",
                )
                if previous is not None:
                    previous >> step
                previous = step
        return dag

    def _build_experiment_dag(self, dag_id: str) -> DAG:
        experiments = self.constructor.build(dag_id, self.base_conf)
        # The scheduler paces the round: at most `parallelism` experiment runs at once (fewer if
        # the pipeline itself allows fewer), the next one started as soon as one ends.
        experiments.max_active_runs = min(experiments.max_active_runs, self.spec.parallelism)
        experiments.is_paused_upon_creation = False
        experiments.tags = {*(experiments.tags or ()), "mlwf-tuning-experiments"}
        _register(experiments)
        return experiments

    # The steps: each reads the store first, so a cleared task continues where it stopped.

    def _ids(self, context: Context) -> tuple[str, str, str]:
        ti = context["ti"]
        return ti.dag_id, ti.run_id, tuning_id_of(ti.dag_id, ti.run_id)

    def _target(self) -> str:
        if self.experiment_dag_id is None:  # pragma: no cover - build_dag sets it
            raise TuningError("the tuner's DAG was not built (call build_dag)")
        return self.experiment_dag_id

    def _open(self, context: Context, tuning_id: str) -> None:
        target = self._target()
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

    def _round(
        self, index: int, context: Context, *, report_task: bool = False
    ) -> ExperimentRunsTrigger | None:
        """Record what the last round left, plan round ``index``, create its runs; return what to wait on."""
        dag_id, run_id, tuning_id = self._ids(context)
        store = self.store()
        if report_task and index > 0 and self._earlier_round_failed(context):
            log.info("tuning %s: an earlier round failed; reporting what is recorded", tuning_id)
            return None
        if index == 0:
            self._open(context, tuning_id)
        ti = context["ti"]
        self._collect(ti, store, tuning_id, final=False)
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
        target = self._target()
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
            foreign = self._foreign(run) if run.run_id in existing else None
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
            stall_timeout=self._experiment_timeout(),
        )

    def _experiment_timeout(self) -> float:
        if self.spec.experiment_timeout_s is not None:
            return self.spec.experiment_timeout_s
        from airflow.configuration import conf

        return conf.getfloat(
            CONFIG_SECTION, "experiment_timeout_s", fallback=DEFAULT_EXPERIMENT_TIMEOUT_S
        )

    def _foreign(self, run: ExperimentRun) -> str | None:
        """Return why the existing run ``run`` is not the one the tuner created, or None when it is."""
        target = self._target()
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

    def _record_ended(self, context: Context) -> None:
        """Record the experiments whose runs have ended (while a round waits in its task)."""
        _, _, tuning_id = self._ids(context)
        self._collect(context["ti"], self.store(), tuning_id, final=False)

    def _fail_stalled(self, context: Context, run_ids: Sequence[str], timeout: float) -> None:
        """Record the experiments of ``run_ids`` still going as failed: no run ended for ``timeout`` s."""
        _, _, tuning_id = self._ids(context)
        ti, store = context["ti"], self.store()
        self._collect(ti, store, tuning_id, final=False)
        stalled = set(run_ids)
        for record in [r for r in store.load(tuning_id) if r.state == ExperimentState.RUNNING]:
            run = store.experiment_run(tuning_id, record.index)
            if run is None or run.run_id not in stalled:
                continue
            error = _stalled_error(run.run_id, self._target(), timeout)
            store.save(tuning_id, [finish_record(record, Outcome(False, error=error), "")])
            log.error("experiment %d: %s", record.index, error)

    def _earlier_round_failed(self, context: Context) -> bool:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        return any(
            str(task_id).startswith("round_") and _text(state) in ("failed", "upstream_failed")
            for task_id, state in states.items()
        )

    def _collect(self, ti: Any, store: ExperimentStore, tuning_id: str, *, final: bool) -> int:
        """Record every running experiment whose run has ended; return how many were recorded.

        With ``final``, also wait for runs still going (at most ``experiment_timeout_s`` without
        one ending) and fail experiments whose run does not exist; otherwise those stay running
        (the round hands them out again).
        """
        target = self._target()
        recorded = 0
        timeout = self._experiment_timeout() if final else 0.0
        progressed = time.monotonic()
        # Loaded once: an experiment that finished its own record (early stopping marks it
        # pruned) usually did so before its run ended, so it is not running here.
        for record in [r for r in store.load(tuning_id) if r.state == ExperimentState.RUNNING]:
            run = store.experiment_run(tuning_id, record.index)
            state = None if run is None else self._run_state(ti, run.run_id)
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
                        state = self._run_state(ti, child) or "deleted"
                progressed = time.monotonic()
                # Only the run the tuner created (its token in the conf) has results that count.
                foreign = self._foreign(run) if state in TERMINAL_STATES else None
                if state not in TERMINAL_STATES:
                    outcome = Outcome(False, error=_stalled_error(child, target, timeout))
                elif foreign is not None:
                    outcome = Outcome(False, error=foreign)
                else:
                    outcome = self._outcome(ti, child, state)
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

    def _run_state(self, ti: Any, run_id: str) -> str | None:
        """Return the state of experiment run ``run_id``, or None when it does not exist."""
        target = self._target()
        try:
            state = ti.get_dagrun_state(dag_id=target, run_id=run_id)
        except Exception:  # the execution API answers 404 for a run that does not exist
            state = None
        if state is None and ti.get_dr_count(dag_id=target, run_ids=[run_id]) == 0:
            return None
        return _text(state)

    def _outcome(self, ti: Any, run_id: str, state: str) -> Outcome:
        target = self._target()
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
            states = ti.get_task_states(dag_id=self._target(), run_ids=[run_id])
        except Exception:  # only decoration of the error message: never fail the recording
            return ""
        failed = sorted(
            str(task_id)
            for by_task in states.values()
            for task_id, state in by_task.items()
            if _text(state) in ("failed", "upstream_failed")
        )
        return f" (failed tasks: {', '.join(failed)})" if failed else ""

    def _report(self, context: Context) -> dict[str, Any]:
        _, _, tuning_id = self._ids(context)
        store = self.store()
        self._collect(context["ti"], store, tuning_id, final=True)
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
            raise TooManyFailedExperiments(
                tuning_id, failed, self.spec.max_failed_experiments, last
            )
        if result.best_index is None:
            raise TuningError(f"tuning {tuning_id!r}: no experiment succeeded\n{table}")
        return payload


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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._step = step
        self._rounds = rounds
        self._finish = finish
        self._progress = progress
        self._stalled = stalled
        self._wait_in_task_s = wait_in_task_s
        self._poke_interval = poke_interval

    def execute(self, context: Context) -> Any:
        """Run the task's rounds; wait for each round's runs here briefly, else in the triggerer."""
        # Import the planner's Optuna while the step opens the tuning and reads the records
        # (network and database waits): about 0.25 s less before the experiments start.
        threading.Thread(target=_import_optuna, name="mlwf-tuning-import", daemon=True).start()
        return self._rounds_from(context, self._rounds.start)

    def execute_complete(
        self, context: Context, event: Any = None, next_round: int | None = None
    ) -> Any:
        """Resumed once a round's runs have ended (or stalled): go on with the next round, then finish."""
        if isinstance(event, dict) and event.get("stalled") and self._stalled is not None:
            self._stalled(context, list(event.get("run_ids", ())), float(event["timeout"]))
        return self._rounds_from(context, self._rounds.stop if next_round is None else next_round)

    def _rounds_from(self, context: Context, first: int) -> Any:
        for index in range(first, self._rounds.stop):
            trigger = self._step(index, context)
            if trigger is None or self._ended_in_task(context, trigger):
                continue
            # Resume the task when it has work left; else the triggerer ends it (no worker).
            trigger.end_task = index + 1 >= self._rounds.stop and self._finish is None
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                kwargs={"next_round": index + 1},
            )
        return self._finish(context) if self._finish is not None else None

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


def _stalled_error(run_id: str, dag_id: str, timeout: float) -> str:
    return (
        f"run {run_id!r} of DAG {dag_id!r} had not ended after {timeout:.0f} s in which no "
        "experiment run of its round ended (experiment_timeout_s); recorded as failed. The run "
        "itself is left as it is: mark it failed in the Airflow UI if it is stuck"
    )


def _import_optuna() -> None:
    import optuna  # noqa: F401  # imported for its side effect: loaded before planning needs it


def _register(dag: DAG) -> None:
    """Register ``dag`` with the DAG file being parsed, as ``with DAG(...)`` does."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    module_name = DagContext.current_autoregister_module_name
    if module_name is not None and module_name in sys.modules:
        DagContext.autoregistered_dags.add((dag, sys.modules[module_name]))


def _text(state: object) -> str:
    """Return a state's plain value (the Task SDK hands back ``DagRunState`` enums)."""
    return str(getattr(state, "value", state))


def _parse_time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
