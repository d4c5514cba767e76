"""``HyperparameterTuner``: a tuning DAG whose experiments are triggered runs of a constructor instance.

See the design note (docs/mlwf-tuning/design.md)::

    open ─► plan_0 ─► run_0 (mapped triggers, ≤ parallelism) ─► record_0 ─► plan_1 ─► … ─► report

Each experiment is a run of the instance DAG ``instance_id`` with ``conf`` = the experiment's
hyperparameters and a run id naming its index (``exp0003__<tuning dag>__<tuning run>``), so it is
an ordinary, visible run of the team's pipeline. Grid and random searches have one round; Bayesian
methods ``ceil(n_experiments / parallelism)`` rounds, each planned from every result so far.
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Context, task
from mlwf_constructors import DagConstructor, ParameterValidationError

from mlwf_tuning._errors import TooManyFailedExperiments, TuningError
from mlwf_tuning._methods import resolve_method
from mlwf_tuning._notify import notify_result
from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._result import XCOM_KEY
from mlwf_tuning._rounds import (
    Outcome,
    check_failures,
    conf_of,
    experiment_run_id,
    finish_record,
    note_of,
    plan_round,
    summarize,
    tuning_id_of,
)
from mlwf_tuning._space import Categorical, FloatRange, IntRange
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._store import ExperimentStore, SqlExperimentStore
from mlwf_tuning._workflow import WORKFLOW_RESULT_KEY, WORKFLOW_TIMING_KEY

log = logging.getLogger(__name__)

#: ``[mlwf_tuning] store_url``: where tuning DAGs record experiments (default: the metadata DB).
CONFIG_SECTION = "mlwf_tuning"
_TERMINAL = ("success", "failed")


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


def default_store_url() -> str:
    """Return ``[mlwf_tuning] store_url``, else the Airflow metadata database's URL."""
    from airflow.configuration import conf

    url = conf.get(CONFIG_SECTION, "store_url", fallback=None)
    if url:
        return url
    url = conf.get("database", "sql_alchemy_conn", fallback=None)
    if not url:
        raise TuningError(
            "no experiment store: set [mlwf_tuning] store_url (or [database] sql_alchemy_conn)"
        )
    return url


@functools.cache
def _store(url: str) -> SqlExperimentStore:
    return SqlExperimentStore(url)


class HyperparameterTuner:
    """Tune a DAG constructor: ``HyperparameterTuner(constructor, spec, instance_id=...).build_dag(dag_id)``.

    ``instance_id`` is the DAG whose runs are the experiments: an instance of ``constructor``
    (built in a DAG file with ``constructor.build(instance_id, values)`` or created through
    mlwf-constructors). Each experiment triggers it with ``conf`` = ``base_conf`` plus the
    experiment's hyperparameters and reads XCom ``workflow_result`` of task
    ``result_task_id``. Experiments are recorded in ``store`` (default: a ``SqlExperimentStore``
    on ``[mlwf_tuning] store_url`` or the Airflow metadata database). ``notifier`` (any Airflow
    notifier) receives the report.
    """

    def __init__(
        self,
        constructor: DagConstructor,
        spec: HyperparameterTuningSpec,
        *,
        instance_id: str,
        base_conf: Mapping[str, Any] | None = None,
        result_task_id: str = WORKFLOW_RESULT_KEY,
        store: ExperimentStore | str | None = None,
        notifier: Callable[[dict[str, Any]], object] | None = None,
        poke_interval: int = 2,
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
        if poke_interval < 1:
            raise TuningDefinitionError(f"poke_interval must be >= 1 s, got {poke_interval}")
        self.constructor = constructor
        self.spec = spec
        self.instance_id = instance_id
        self.base_conf = base
        self.result_task_id = result_task_id
        self._store = store
        self.notifier = notifier
        self.poke_interval = int(poke_interval)

    def store(self) -> ExperimentStore:
        """Return the experiment store (opened lazily: in the task that needs it)."""
        if self._store is None or isinstance(self._store, str):
            return _store(self._store or default_store_url())
        return self._store

    def rounds(self) -> int:
        """Return the number of plan/run/record rounds of the DAG."""
        if resolve_method(self.spec.method).plans_upfront:
            return 1
        return math.ceil(self.spec.total_experiments() / self.spec.parallelism)

    def build_dag(self, dag_id: str, **dag_kwargs: Any) -> DAG:
        """Return the tuning DAG; ``dag_kwargs`` go to ``DAG`` (schedule defaults to None)."""
        spec = self.spec
        dag_kwargs.setdefault("schedule", None)
        dag_kwargs.setdefault("start_date", datetime.datetime(2026, 1, 1, tzinfo=UTC))
        dag_kwargs.setdefault("catchup", False)
        dag_kwargs.setdefault("max_active_runs", 1)
        dag_kwargs.setdefault("tags", ["mlwf-tuning"])
        dag_kwargs.setdefault(
            "description",
            f"tune {self.instance_id} ({spec.method}, {spec.total_experiments()} experiments, "
            f"{spec.direction} {spec.metric})",
        )
        with DAG(dag_id, **dag_kwargs) as dag:
            opened = task(task_id="open")(self._open)()
            previous: Any = opened
            for i in range(self.rounds()):
                planned = task(task_id=f"plan_{i}")(self._plan)()
                runs = TriggerDagRunOperator.partial(
                    task_id=f"run_{i}",
                    trigger_dag_id=self.instance_id,
                    wait_for_completion=True,
                    deferrable=True,
                    poke_interval=self.poke_interval,
                    skip_when_already_exists=True,
                    openlineage_inject_parent_info=False,
                    max_active_tis_per_dagrun=spec.parallelism,
                ).expand_kwargs(planned)
                recorded = task(task_id=f"record_{i}", trigger_rule="all_done")(self._record)()
                previous >> planned >> runs >> recorded
                previous = recorded
            report = task(task_id="report", trigger_rule="all_done")(self._report)()
            previous >> report
        return dag

    # The task callables: each reads the store first, so a cleared task continues where it stopped.

    def _ids(self, context: Context) -> tuple[str, str, str]:
        ti = context["ti"]
        return ti.dag_id, ti.run_id, tuning_id_of(ti.dag_id, ti.run_id)

    def _open(self) -> dict[str, Any]:
        from airflow.sdk import get_current_context

        context = get_current_context()
        _, _, tuning_id = self._ids(context)
        try:
            paused = context["ti"].get_dag(self.instance_id).is_paused
        except Exception as err:  # the execution API answers 404 for an unknown DAG
            raise TuningError(
                f"tuning {tuning_id!r}: the experiment DAG {self.instance_id!r} is not available "
                f"({type(err).__name__}: {err}); create the constructor instance first"
            ) from err
        if paused:
            raise TuningError(
                f"tuning {tuning_id!r}: the experiment DAG {self.instance_id!r} is paused; its "
                "runs would never start. Unpause it, then clear this task"
            )
        store = self.store()
        store.open_tuning(tuning_id, self.spec.plan_json())
        records = store.load(tuning_id)
        log.info(
            "tuning %s: %s over %s, %d experiments recorded so far",
            tuning_id,
            self.spec.method,
            self.instance_id,
            len(records),
        )
        return {"tuning_id": tuning_id, "recorded": len(records)}

    def _plan(self) -> list[dict[str, Any]]:
        from airflow.sdk import get_current_context

        context = get_current_context()
        dag_id, run_id, tuning_id = self._ids(context)
        started = context["dag_run"].start_date
        records = plan_round(self.store(), tuning_id, self.spec, started_at=started)
        for r in records:
            log.info("experiment %d: %s", r.index, r.params)
        if not records:
            log.info("tuning %s: nothing to run in this round", tuning_id)
        return [
            {
                "trigger_run_id": experiment_run_id(dag_id, run_id, r.index),
                "conf": conf_of(r, self.base_conf, tuning_id),
                "note": note_of(tuning_id, r),
            }
            for r in records
        ]

    def _outcome(self, ti: Any, run_id: str) -> Outcome:
        where = f"run {run_id!r} of DAG {self.instance_id!r}"
        if ti.get_dr_count(dag_id=self.instance_id, run_ids=[run_id]) == 0:
            return Outcome(False, error=f"{where} was never created (see this round's run task)")
        state = ti.get_dagrun_state(dag_id=self.instance_id, run_id=run_id)
        while state not in _TERMINAL:  # a run found already running when a cleared task resumed
            time.sleep(self.poke_interval)
            state = ti.get_dagrun_state(dag_id=self.instance_id, run_id=run_id)
        if state != "success":
            return Outcome(
                False, error=f"{where} ended {_text(state)}{self._failed_tasks(ti, run_id)}"
            )
        pull = functools.partial(
            ti.xcom_pull, task_ids=self.result_task_id, dag_id=self.instance_id, run_id=run_id
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
            states = ti.get_task_states(dag_id=self.instance_id, run_ids=[run_id])
        except Exception:  # only decoration of the error message: never fail the recording
            return ""
        failed = sorted(
            str(task_id)
            for by_task in states.values()
            for task_id, state in by_task.items()
            if _text(state) in ("failed", "upstream_failed")
        )
        return f" (failed tasks: {', '.join(failed)})" if failed else ""

    def _record(self) -> dict[str, int]:
        from airflow.sdk import get_current_context

        context = get_current_context()
        dag_id, run_id, tuning_id = self._ids(context)
        store = self.store()
        ti = context["ti"]
        running = [r for r in store.load(tuning_id) if r.state == ExperimentState.RUNNING]
        finished: list[ExperimentRecord] = []
        for record in running:
            child = experiment_run_id(dag_id, run_id, record.index)
            outcome = self._outcome(ti, child)
            # An experiment may finish its own record (early stopping marks it pruned): keep it.
            current = {r.index: r for r in store.load(tuning_id)}.get(record.index, record)
            if current.state.finished:
                log.info(
                    "experiment %d (%s): %s by the experiment",
                    current.index,
                    child,
                    current.state.value,
                )
                finished.append(current)
                continue
            done = finish_record(record, outcome, self.spec.metric)
            store.save(tuning_id, [done])  # one by one: nothing finished is lost if this task dies
            finished.append(done)
            log.info(
                "experiment %d (%s): %s %s%s",
                done.index,
                child,
                done.state.value,
                done.metrics.get(self.spec.metric, ""),
                f" ({done.error})" if done.error else "",
            )
        check_failures(tuning_id, self.spec, store.load(tuning_id))
        return {"recorded": len(finished)}

    def _report(self) -> dict[str, Any]:
        from airflow.sdk import get_current_context

        context = get_current_context()
        _, _, tuning_id = self._ids(context)
        result = summarize(self.store(), tuning_id, self.spec)
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
