"""Train → validate → serve → load-test → record a scikit-learn model; the service is always stopped.

The record step registers the model version in MLflow through connection ``mlwf_mlflow_default``.
``mlwf up`` (and ``EmbeddedInstance``) define it as the SQLite store
``$AIRFLOW_HOME/mlwf/mlflow.db`` unless the environment already sets
``AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT`` (e.g. to ``{"conn_type": "mlwf_mlflow", "host": "http://mlflow:5000"}``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, XComArg
from mlwf_operators.operators.load_test import LoadTestOperator
from mlwf_operators.operators.model_registry import RecordModelVersionOperator
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
    hyperparameters = {"model": "logistic_regression", "C": 1.0}
    # Artifacts go to $AIRFLOW_HOME/mlwf/artifacts/<dag>/<run>/<task>-<try> (the default location).
    train = TrainModelOperator(
        task_id="train",
        entry_point="mlwf_operators.trainers.sklearn_reference:train",
        data="sklearn://breast_cancer",
        hyperparameters=hyperparameters,
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
    # A new version of registered model "breast_cancer_classifier" (experiment: the DAG id) with the
    # hyperparameters, the held-out metrics and the lineage tags airflow.dag_id/run_id/task_id.
    record = RecordModelVersionOperator(
        task_id="record",
        model_name="breast_cancer_classifier",
        model_uri=train.output,
        model_params=hyperparameters,
        metrics=validate.output,
        tags={"data": "sklearn://breast_cancer"},
    )
    stop = StopModelServiceOperator(task_id="stop_service", serve_task_id="serve")

    train >> validate >> serve >> load_test >> record >> stop
    stop.as_teardown(setups=serve)
