"""The example ML pipeline on a real embedded Airflow: train → validate → serve → load-test → record → stop.

The package's instance (``conftest.py``) serves the module; its DAG folder holds ``examples/dags``.
"""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi, assert_no_leftover_processes


def test_ml_pipeline_runs_and_leaves_no_service(instance: EmbeddedInstance) -> None:
    """ml_pipeline succeeds, pushes load-test numbers, records the model version in the home's MLflow
    store, and its teardown leaves no service process."""
    api = AirflowApi.for_instance(instance, timeout=30)
    api.unpause("ml_pipeline", timeout=120)
    run_id = api.trigger("ml_pipeline", unpause=False)
    state = api.wait_run("ml_pipeline", run_id, timeout=300, interval=2)
    assert state == "success", api.task_states("ml_pipeline", run_id)

    def xcom(task_id: str, key: str = "return_value") -> object:
        value = api.xcom("ml_pipeline", run_id, task_id, key, deserialize=True)
        return json.loads(value) if isinstance(value, str) and value.startswith("{") else value

    result = xcom("load_test")
    assert isinstance(result, dict)
    assert result["errors"] == 0 and result["requests"] == 150 and result["p99_ms"] > 0
    model_uri = str(xcom("train"))
    assert model_uri.startswith("file://")

    # The record step wrote to the SQLite MLflow store the embedded instance configures.
    store = f"sqlite:///{instance.home.mlflow_database}"
    mlflow = MlflowClient(tracking_uri=store, registry_uri=store)
    version = mlflow.get_model_version("breast_cancer_classifier", str(xcom("record")))
    lineage = {
        "airflow.dag_id": "ml_pipeline",
        "airflow.run_id": run_id,
        "airflow.task_id": "record",
    }
    assert version.source == model_uri
    assert version.run_id == xcom("record", "mlflow_run_id")
    assert lineage.items() <= version.tags.items()
    run = mlflow.get_run(version.run_id)
    assert lineage.items() <= run.data.tags.items()
    assert run.data.tags["data"] == "sklearn://breast_cancer"
    assert run.data.params == {"model": "logistic_regression", "C": "1.0"}
    assert run.data.metrics == xcom("validate") and run.data.metrics["accuracy"] >= 0.9
    assert mlflow.get_experiment(run.info.experiment_id).name == "ml_pipeline"

    state_dir = instance.home.airflow_home / "mlwf" / "services"
    assert list(state_dir.glob("*.json")) == []  # the teardown removed the state file
    assert_no_leftover_processes("mlwf_operators.serving")
