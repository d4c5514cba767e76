"""An MLflow tracking server and model registry with the ``mlflow`` (skinny) client.

``mlflow`` is imported on first use (in :meth:`MlflowHook.get_conn` and the calls), never at
import time: DAG files import this module through ``RecordModelVersionOperator``, and importing
mlflow (it pulls in pandas and scipy) took 18 s of a 31 s DAG-file parse on a busy machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook

from mlwf_operators.hooks._errors import ConnectionConfigError, ExternalServiceError
from mlwf_operators.hooks._http import base_url, extras

if TYPE_CHECKING:
    from mlflow.exceptions import MlflowException, RestException
    from mlflow.tracking import MlflowClient

T = TypeVar("T")


@dataclass(frozen=True)
class RecordedModelVersion:
    """What :meth:`MlflowHook.record_model_version` created."""

    name: str
    version: str
    run_id: str
    experiment_id: str


class MlflowHook(BaseHook):
    """Talk to an MLflow tracking server (and its model registry).

    Connection (type ``mlwf_mlflow``): ``host`` the tracking URI (``http://mlflow:5000``) or host
    plus ``port``; optional ``login``/``password`` (MLflow basic auth); extra ``max_retries``
    (default 2) and ``timeout`` (seconds, default 30) of each HTTP request.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlwf_mlflow_default"
    conn_type = "mlwf_mlflow"
    hook_name = "MLflow tracking server (mlwf)"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def tracking_uri(self) -> str:
        """The tracking URI of the connection (a database URI such as ``sqlite:///…`` is used as is)."""
        conn = self.get_connection(self.mlflow_conn_id)
        host = (conn.host or "").strip()
        if host.partition("://")[0].partition("+")[0] in _DATABASE_SCHEMES:
            return host
        return base_url(
            self.get_connection(self.mlflow_conn_id),
            self.conn_type,
            default_port=None,
            default_scheme="http",
        )

    def get_conn(self) -> MlflowClient:
        """Return an ``MlflowClient`` for the tracking server and its registry."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @cached_property
    def client(self) -> MlflowClient:
        """The client, created on first use."""
        return self.get_conn()

    @contextmanager
    def _environment(self) -> Iterator[None]:
        """Apply the connection's credentials and retry policy (MLflow reads them from the environment)."""
        conn = self.get_connection(self.mlflow_conn_id)
        extra = extras(conn, self.conn_type)
        if bool(conn.login) != bool(conn.password):
            raise ConnectionConfigError(
                self.mlflow_conn_id, self.conn_type, "set both login and password, or neither"
            )
        wanted = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(int(extra.get("max_retries", 2))),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(extra.get("timeout", 30))),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(extra.get("backoff_factor", 1)),
        }
        if conn.login:
            wanted |= {
                "MLFLOW_TRACKING_USERNAME": conn.login,
                "MLFLOW_TRACKING_PASSWORD": conn.password or "",
            }
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        from mlflow.exceptions import MlflowException, RestException

        try:
            with self._environment():
                return call()
        except RestException as error:
            raise ExternalServiceError(
                "MLflow",
                operation,
                _rest_message(error),
                status=_http_status(error),
            ) from error
        except MlflowException as error:
            message = str(error.message)
            if (
                "Max retries exceeded" in message
                or "Connection refused" in message
                or "failed with exception" in message
            ):
                message = f"cannot reach MLflow at {self.tracking_uri}: {message}"
                status = None
            else:
                status = _http_status(error)
            raise ExternalServiceError("MLflow", operation, message, status=status) from error

    # operations ----------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        """Return the id of experiment ``name``, creating it if needed."""
        experiment = self._call(
            f"get experiment {name!r}", lambda: self.client.get_experiment_by_name(name)
        )
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(
            self._call(f"create experiment {name!r}", lambda: self.client.create_experiment(name))
        )

    def record_model_version(
        self,
        *,
        name: str,
        model_uri: str,
        experiment_name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
    ) -> RecordedModelVersion:
        """Log a run with ``params``/``metrics``/``tags`` and register ``model_uri`` as a version of ``name``."""
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import RestException

        experiment_id = self.experiment_id(experiment_name)
        run = self._call(
            f"create run in experiment {experiment_name!r}",
            lambda: self.client.create_run(
                experiment_id,
                tags=dict(tags),
                run_name=f"{name}-{tags.get('airflow.task_id', 'run')}",
            ),
        )
        run_id = str(run.info.run_id)
        timestamp = int(run.info.start_time)
        self._call(
            f"log params and metrics of run {run_id}",
            lambda: self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), timestamp, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in params.items()],
                tags=[RunTag("mlflow.source.type", "JOB")],
            ),
        )
        self._call(f"finish run {run_id}", lambda: self.client.set_terminated(run_id, "FINISHED"))
        try:
            with self._environment():
                self.client.create_registered_model(name)
        except RestException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise ExternalServiceError(
                    "MLflow",
                    f"register model {name!r}",
                    _rest_message(error),
                    status=_http_status(error),
                ) from error
        version = self._call(
            f"create version of model {name!r} from {model_uri!r}",
            lambda: self.client.create_model_version(
                name, model_uri, run_id=run_id, tags=dict(tags)
            ),
        )
        return RecordedModelVersion(name, str(version.version), run_id, experiment_id)


#: Tracking URI schemes of MLflow's SQLAlchemy store (needs the full ``mlflow`` package).
_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


def _http_status(error: MlflowException) -> int:
    """Return the HTTP status MLflow maps ``error``'s error code to."""
    status: int = error.get_http_status_code()  # type: ignore[no-untyped-call]  # untyped in mlflow
    return status


def _rest_message(error: RestException) -> str:
    """Return ``ERROR_CODE: message`` once (MLflow's message usually starts with the code already)."""
    message = str(error.message)
    return (
        message if message.startswith(str(error.error_code)) else f"{error.error_code}: {message}"
    )
