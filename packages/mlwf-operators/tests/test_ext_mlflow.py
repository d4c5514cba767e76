"""RecordModelVersionOperator and MlflowHook against a real MLflow tracking server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from mlwf_operators.hooks import ExternalServiceError
from mlwf_operators.operators.model_registry import RecordModelVersionOperator
from mlwf_testsupport import free_port
from mlwf_testsupport.fakes import mlflow_server

CONN = "mlflow_test"


class TaskInstance:
    """The parts of Airflow's runtime task instance the operator reads: ids and ``xcom_push``."""

    def __init__(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` with a SQLite store that accepts hdfs:// model sources, for this module."""
    env = {"MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES": "hdfs"}
    with mlflow_server(tmp_path_factory.mktemp("mlflow"), env=env) as uri:
        yield uri


@pytest.fixture
def conn(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``mlflow_test`` (URI form) to the tracking server."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN.upper()}",
        f"mlwf-mlflow://{tracking_uri.removeprefix('http://')}?max_retries=0",
    )
    return tracking_uri


def _record(ti: TaskInstance, **kwargs: Any) -> str:
    op = RecordModelVersionOperator(task_id=ti.task_id, mlflow_conn_id=CONN, **kwargs)
    return op.execute({"ti": ti})


def test_records_version_with_params_metrics_and_lineage(conn: str) -> None:
    """A recorded version has its run's params, metrics and Airflow lineage tags, and versions count up."""
    ti = TaskInstance("churn", "manual__2026-11-25", "record")
    version = _record(
        ti,
        model_name="churn-model",
        model_uri="hdfs:///models/churn/1",
        model_params={"max_depth": 5},
        metrics={"auc": 0.91},
        tags={"team": "ml"},
    )
    assert version == "1"
    client = MlflowClient(tracking_uri=conn, registry_uri=conn)
    mv = client.get_model_version("churn-model", "1")
    assert (mv.source, mv.run_id) == ("hdfs:///models/churn/1", ti.pushed["mlflow_run_id"])
    assert (
        mv.tags["airflow.dag_id"] == "churn" and mv.tags["airflow.run_id"] == "manual__2026-11-25"
    )
    run = client.get_run(mv.run_id)
    assert run.data.params == {"max_depth": "5"}
    assert run.data.metrics == {"auc": 0.91}
    assert {k: run.data.tags[k] for k in ("airflow.dag_id", "airflow.run_id", "airflow.task_id", "team")} == {
        "airflow.dag_id": "churn", "airflow.run_id": "manual__2026-11-25", "airflow.task_id": "record", "team": "ml",
    }  # fmt: skip
    assert client.get_experiment(run.info.experiment_id).name == "churn"
    assert run.info.status == "FINISHED"
    assert (
        _record(
            TaskInstance("churn", "r2", "record"),
            model_name="churn-model",
            model_uri="hdfs:///models/churn/2",
        )
        == "2"
    )


def test_rejected_model_source_reports_mlflow_status_and_code(conn: str) -> None:
    """A source the server refuses fails with MLflow, HTTP 400 and INVALID_PARAMETER_VALUE.

    A local path outside the run's artifacts: every MLflow 3 server refuses it (the 'ftp' scheme
    the test used before is refused only from MLflow 3.17 on, so the lowest versions passed it).
    """
    with pytest.raises(
        ExternalServiceError,
        match=r"MLflow create version of model 'm' from '/etc/passwd' failed \(HTTP 400\): INVALID_PARAMETER_VALUE: Invalid model version source: '/etc/passwd'",
    ):
        _record(TaskInstance("d", "r", "t"), model_name="m", model_uri="/etc/passwd")


def test_bad_metric_is_named_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Non-finite metrics are refused naming the bad entries."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN.upper()}",
        json.dumps({"conn_type": "mlwf_mlflow", "host": "http://127.0.0.1:1"}),
    )
    with pytest.raises(
        ValueError,
        match=r"argument 'metrics' must map names to finite numbers; bad entries: \{'auc': nan, 'f1': inf\}",
    ):
        _record(
            TaskInstance("d", "r", "t"),
            model_name="m",
            model_uri="u",
            metrics={"auc": float("nan"), "f1": float("inf"), "ok": 1.0},
        )


def test_unreachable_tracking_server_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tracking server nobody listens on fails with 'cannot reach MLflow' and its URI."""
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN.upper()}",
        json.dumps(
            {"conn_type": "mlwf_mlflow", "host": uri, "extra": {"max_retries": 0, "timeout": 2}}
        ),
    )
    with pytest.raises(
        ExternalServiceError,
        match=rf"MLflow get experiment 'd' failed: cannot reach MLflow at {uri}",
    ):
        _record(TaskInstance("d", "r", "t"), model_name="m", model_uri="u")


def test_database_store_connection_records_without_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection whose host is a ``sqlite:///`` URI records straight into MLflow's database store."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DB", json.dumps({"conn_type": "mlwf_mlflow", "host": store})
    )
    ti = TaskInstance("local", "manual__1", "record")
    op = RecordModelVersionOperator(
        task_id="record",
        mlflow_conn_id="mlflow_db",
        model_name="local-model",
        model_uri=(tmp_path / "model").as_uri(),
        metrics={"accuracy": 0.9},
    )
    assert op.execute({"ti": ti}) == "1"
    mv = MlflowClient(tracking_uri=store, registry_uri=store).get_model_version("local-model", "1")
    assert mv.run_id == ti.pushed["mlflow_run_id"] and mv.tags["airflow.task_id"] == "record"
