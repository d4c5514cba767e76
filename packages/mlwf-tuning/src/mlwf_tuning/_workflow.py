"""``TrainEvaluateWorkflow``: the common experiment, "train my model and score it", as a DAG constructor.

It follows the experiment contract of the tuning DAG: the run's task ``workflow_result`` pushes
the XCom ``workflow_result`` (``dict[str, float]``), here the held-out metrics of
``ValidateModelOperator`` (``accuracy``, ``f1_macro``, ``log_loss``) plus the training metrics
(``train_accuracy``, ..., ``fit_seconds``). Every parameter is read from the run's ``params`` when
the run executes, so a triggered run's ``conf`` (one experiment's hyperparameters) applies. A
trainer that reports progress per epoch (``mlwf_operators.trainers.report_progress``) reports it
to the tuning (``report_intermediate``), so the spec's early-stopping rule can stop the run.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from datetime import UTC
from typing import Any, Literal

from airflow.sdk import DAG, Context, Param, XComArg, task
from mlwf_constructors import DagConstructor, Parameter
from mlwf_operators.operators.training import TrainModelOperator
from mlwf_operators.operators.validation import ValidateModelOperator
from mlwf_types import typed

from mlwf_tuning._contract import WORKFLOW_RESULT_KEY, WORKFLOW_TIMING_KEY
from mlwf_tuning._pruning import report_intermediate

REFERENCE_TRAINER = "mlwf_operators.trainers.sklearn_reference:train"


@typed(
    inputs={"train_metrics": dict[str, float]},
    outputs={WORKFLOW_RESULT_KEY: dict[str, float], WORKFLOW_TIMING_KEY: dict[str, str]},
)
class ValidateAndReportOperator(ValidateModelOperator):
    """Validate the model like ``ValidateModelOperator``, then push the experiment's ``workflow_result``.

    ``workflow_result`` holds the validation metrics plus ``train_metrics`` (validation wins on a
    name clash). ``min_accuracy_param`` names a run-time param that, when set, replaces the
    accuracy threshold, so a run's ``conf`` can change it.
    """

    template_fields = (*ValidateModelOperator.template_fields, "train_metrics")  # type: ignore[assignment]  # one more field

    def __init__(
        self,
        *,
        train_metrics: dict[str, float] | XComArg,
        min_accuracy_param: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.train_metrics = train_metrics
        self.min_accuracy_param = min_accuracy_param

    def execute(self, context: Context) -> dict[str, float]:
        """Validate, then push ``workflow_result`` and ``workflow_timing``; return the validation metrics."""
        if self.min_accuracy_param is not None:
            bound = context["params"].get(self.min_accuracy_param)
            if bound is not None:
                self.thresholds = {"accuracy": float(bound)}
        metrics = super().execute(context)
        assert isinstance(self.train_metrics, dict)  # rendered from the train task's XCom
        result = {**{k: float(v) for k, v in self.train_metrics.items()}, **metrics}
        ti = context["ti"]
        ti.xcom_push(key=WORKFLOW_RESULT_KEY, value=result)
        started = context["dag_run"].start_date
        ti.xcom_push(
            key=WORKFLOW_TIMING_KEY,
            value={
                "started": (started or datetime.datetime.now(UTC)).isoformat(),
                "finished": datetime.datetime.now(UTC).isoformat(),
            },
        )
        return metrics


class TrainAndReportOperator(TrainModelOperator):
    """Train like ``TrainModelOperator``; report the trainer's progress to the tuning (early stopping).

    Each ``report_progress(step, metrics)`` of the trainer goes to ``report_intermediate``, which
    records the tuning metric's value (when ``metrics`` holds it) and, when the spec's
    early-stopping rule stops the experiment, kills the trainer and skips the task. Outside a
    tuning it only logs, as ``TrainModelOperator`` does. Its types are ``TrainModelOperator``'s
    (``@typed`` declarations are inherited).
    """

    def on_progress(self, step: int, metrics: dict[str, float], context: Context) -> None:
        """Report ``metrics`` at ``step`` to the tuning this run is an experiment of, if any."""
        report_intermediate(step, metrics, context=context)


Model = Literal["logistic_regression", "random_forest"]
Dataset = Literal["breast_cancer", "digits", "iris", "wine"]


class TrainEvaluateWorkflow(DagConstructor):
    """Train a scikit-learn model with the reference trainer, validate it, report its metrics.

    DAG: ``hyperparameters`` (the trainer's params from the run's params) → ``train``
    (``TrainAndReportOperator``) → ``workflow_result`` (``ValidateAndReportOperator``: fails when
    held-out accuracy is below ``min_accuracy``; pushes ``workflow_result``).

    ``trainer`` is the training entry point (the trainer contract of mlwf-operators), by default
    the scikit-learn reference trainer, which fits in one step and reports no progress. A
    subclass naming a trainer that calls ``report_progress(epoch, {"accuracy": ...})`` gets
    early stopping: a tuning with ``early_stopping`` prunes its runs whose curve of the spec's
    metric falls below the median of the finished ones.
    """

    name = "train_evaluate_workflow"
    #: The training entry point: ``train(params, data, output_dir)``, given ``trainer_params``.
    trainer: str = REFERENCE_TRAINER
    version = "1.0.0"
    description = "Train a scikit-learn model on a bundled dataset, validate it, push its metrics."
    parameters = (
        Parameter("dataset", Dataset, default="breast_cancer", description="bundled dataset"),
        Parameter("model", Model, default="logistic_regression", description="estimator kind"),
        Parameter(
            "C", float, default=1.0, minimum=0.0, description="inverse regularization (logistic)"
        ),
        Parameter("max_iter", int, default=1000, minimum=1, description="solver iterations"),
        Parameter("n_estimators", int, default=100, minimum=1, maximum=2000, description="trees"),
        Parameter("max_depth", int, default=0, minimum=0, description="tree depth (0: unlimited)"),
        Parameter(
            "min_accuracy",
            float,
            default=0.0,
            minimum=0.0,
            maximum=1.0,
            description="held-out accuracy below which the run fails",
        ),
        Parameter(
            "training_timeout", float, default=600.0, minimum=1.0, description="seconds to train"
        ),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Build hyperparameters → train → workflow_result; the tasks read run-time params."""
        with DAG(
            dag_id,
            schedule=None,
            start_date=datetime.datetime(2026, 1, 1, tzinfo=UTC),
            catchup=False,
            params=params,
            max_active_runs=16,
            tags=["mlwf-tuning", self.name],
            description=f"{self.name}: {values['model']} on {values['dataset']}",
        ) as dag:

            @task
            def hyperparameters(params: dict[str, Any] | None = None) -> dict[str, Any]:
                """Return the reference trainer's params for the run's model kind."""
                return trainer_params(params or {})

            hp = hyperparameters()
            data = "sklearn://{{ params.dataset }}"
            train = TrainAndReportOperator(
                task_id="train",
                entry_point=self.trainer,
                data=data,
                hyperparameters=hp,  # type: ignore[arg-type]  # an XComArg, resolved at run time
                training_timeout=float(values["training_timeout"]),
            )
            ValidateAndReportOperator(
                task_id=WORKFLOW_RESULT_KEY,
                model_uri=train.output,
                data=data,
                thresholds={"accuracy": float(values["min_accuracy"])},
                min_accuracy_param="min_accuracy",
                train_metrics=XComArg(train, "metrics"),
            )
        return dag


def trainer_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the reference trainer's hyperparameters from a run's params (only the model's own)."""
    model = params.get("model", "logistic_regression")
    if model == "logistic_regression":
        return {
            "model": model,
            "C": float(params.get("C", 1.0)),
            "max_iter": int(params.get("max_iter", 1000)),
        }
    if model == "random_forest":
        depth = int(params.get("max_depth", 0))
        return {
            "model": model,
            "n_estimators": int(params.get("n_estimators", 100)),
            "max_depth": depth if depth > 0 else None,
        }
    raise ValueError(
        f"param 'model' must be 'logistic_regression' or 'random_forest', not {model!r}"
    )
