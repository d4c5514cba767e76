"""Train → validate → serve → load-test a scikit-learn model; the service is always stopped (teardown)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, XComArg
from mlwf_operators.operators.load_test import LoadTestOperator
from mlwf_operators.operators.serving import ServeModelOperator, StopModelServiceOperator
from mlwf_operators.operators.training import TrainModelOperator
from mlwf_operators.operators.validation import ValidateModelOperator

with DAG(
    "ml_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlwf-operators"],
):
    # Artifacts go to $AIRFLOW_HOME/mlwf/artifacts/<dag>/<run>/<task>-<try> (the default location).
    train = TrainModelOperator(
        task_id="train",
        entry_point="mlwf_operators.trainers.sklearn_reference:train",
        data="sklearn://breast_cancer",
        hyperparameters={"model": "logistic_regression", "C": 1.0},
        training_timeout=300.0,
    )
    validate = ValidateModelOperator(
        task_id="validate",
        model_uri=train.output,
        data="sklearn://breast_cancer",
        thresholds={"accuracy": 0.9, "log_loss": {"max": 0.5}},
    )
    serve = ServeModelOperator(task_id="serve", model_uri=train.output, startup_timeout=120.0)
    load_test = LoadTestOperator(
        task_id="load_test",
        endpoint=XComArg(serve),
        path="/predict",
        payload={"instances": [[1.0] * 30]},
        rate=50.0,
        duration=3.0,
        max_p99_ms=500.0,
        max_error_rate=0.0,
    )
    # ── record: an MLflow record operator (model URI, validation metrics, load-test numbers)
    #    goes here, downstream of load_test, once mlwf-operators' model_registry module lands.
    stop = StopModelServiceOperator(task_id="stop_service", serve_task_id="serve")

    train >> validate >> serve >> load_test >> stop
    stop.as_teardown(setups=serve)
