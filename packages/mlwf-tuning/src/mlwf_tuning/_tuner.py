"""``HyperparameterTuner``: a tuning DAG whose experiments are triggered runs of a constructor's DAG.

See the design note (docs/mlwf-tuning/design.md)::

    report                                   (default: one task runs every round, then reports)
    round_0 ─► round_1 ─► … ─► report        (round_tasks=N: the rounds spread over N tasks)

Each round records the outcomes the last round left, plans its experiments, creates one run of
the experiment DAG per experiment (``conf`` = the experiment's hyperparameters, run id
``exp0003__<tuning dag>__<tuning run>``) and waits until they have all ended (in the task for
up to ``wait_in_task_s``, then in the triggerer).
By default the experiment DAG is the tuner's own (``<tuning dag>__experiments``, its
``max_active_runs`` the spec's parallelism), so grid and random searches are one round whose
runs the scheduler starts as slots free up; Bayesian methods take ``ceil(n_experiments /
parallelism)`` rounds, each planned from every result so far.

This module defines the tuning DAG; what its tasks do is ``_steps``, the task itself
``_round_operator``, and reading the experiment runs ``_experiment_runs``.
"""

from __future__ import annotations

import datetime
import functools
import math
import sys
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from airflow.sdk import DAG, BaseOperator
from mlwf_constructors import DagConstructor, ParameterValidationError

from mlwf_tuning._contract import WORKFLOW_RESULT_KEY
from mlwf_tuning._errors import TuningDefinitionError
from mlwf_tuning._round_operator import TuningRoundOperator
from mlwf_tuning._settings import default_store_url, open_store
from mlwf_tuning._space import Categorical, FloatRange, IntRange
from mlwf_tuning._spec import HyperparameterTuningSpec, resolve_method
from mlwf_tuning._steps import TuningSteps
from mlwf_tuning._store import ExperimentStore

#: The id of the experiment DAG a tuner builds for itself: ``<tuning dag id>__experiments``.
EXPERIMENT_DAG_SUFFIX = "__experiments"
#: The most round tasks a tuning DAG can have (``round_tasks``): each task runs one or more
#: planning rounds, so a tuning of 10,000 one-at-a-time Bayesian experiments is at most 16 tasks.
MAX_ROUND_TASKS = 16


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

    ``round_tasks`` (1 to ``MAX_ROUND_TASKS``, default 1) is how many tasks the rounds of a
    Bayesian search are spread over. One task, ``report``, runs every round and then reports:
    rounds whose experiments end within ``wait_in_task_s`` share one task process and one
    import of the planner's libraries, where a task per round paid a task start and the imports
    each time (``tuning_overhead``). More tasks show the rounds as tasks in Airflow's grid; a
    retried or cleared task continues from the store either way. A round that fails (its
    experiment DAG paused, the store unreachable) still gets the report (XCom, notifier) of what
    is recorded before the task fails. An ``execution_timeout`` bounds each run of the task's
    ``execute`` (until it defers, or resumes), so with one task it bounds consecutive short
    rounds together.
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
        round_tasks: int = 1,
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
        if isinstance(round_tasks, bool) or not isinstance(round_tasks, int):
            raise TuningDefinitionError(
                f"round_tasks must be an int, got {type(round_tasks).__name__}"
            )
        if not 1 <= round_tasks <= MAX_ROUND_TASKS:
            raise TuningDefinitionError(
                f"round_tasks must be between 1 and {MAX_ROUND_TASKS}, got {round_tasks}"
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
        self.max_round_tasks = round_tasks
        #: The experiment DAG's id, known once ``build_dag`` ran.
        self.experiment_dag_id: str | None = instance_id
        #: The experiment DAG the tuner built (``None`` with ``instance_id``).
        self.experiment_dag: DAG | None = None
        #: What the tuning DAG's tasks do, known once ``build_dag`` ran.
        self.steps: TuningSteps | None = None

    @property
    def owns_experiment_dag(self) -> bool:
        """Return whether the tuner builds its own experiment DAG (no ``instance_id`` given)."""
        return self.instance_id is None

    def store(self) -> ExperimentStore:
        """Return the experiment store (opened lazily: in the task that needs it)."""
        if self._store is None or isinstance(self._store, str):
            return open_store(self._store or default_store_url())
        return self._store

    def rounds(self) -> int:
        """Return the number of planning rounds (each plans, runs and records a batch of experiments)."""
        if resolve_method(self.spec.method).plans_upfront and self.owns_experiment_dag:
            return 1
        return math.ceil(self.spec.total_experiments() / self.spec.parallelism)

    def round_tasks(self) -> int:
        """Return the number of round tasks of the DAG: ``round_tasks``, at most one per round."""
        return min(self.rounds(), self.max_round_tasks)

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
        steps = self.steps = TuningSteps(
            spec,
            target,
            owns_experiment_dag=self.owns_experiment_dag,
            base_conf=self.base_conf,
            store=self.store,
            notifier=self.notifier,
            result_task_id=self.result_task_id,
            poke_interval=self.poke_interval,
        )
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
                first = i * rounds // tasks  # the task's first round
                step = TuningRoundOperator(
                    # The last task also reports, and runs whatever came before (all_done).
                    task_id="report" if last else f"round_{i}",
                    # Rounds spread evenly over the tasks: a large tuning stays a small DAG.
                    rounds=range(first, (i + 1) * rounds // tasks),
                    step=functools.partial(
                        steps.round,
                        report_task=last,
                        after_round_tasks_at=first if last and tasks > 1 else None,
                    ),
                    finish=steps.report if last else None,
                    progress=steps.record_ended,
                    stalled=steps.fail_stalled,
                    wait_in_task_s=self.wait_in_task_s,
                    poke_interval=self.poke_interval,
                    warm_imports=resolve_method(spec.method).modules,
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


def _register(dag: DAG) -> None:
    """Register ``dag`` with the DAG file being parsed, as ``with DAG(...)`` does."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    module_name = DagContext.current_autoregister_module_name
    if module_name is not None and module_name in sys.modules:
        DagContext.autoregistered_dags.add((dag, sys.modules[module_name]))
