"""This package's defaults on an mlwf instance (entry point group ``mlwf.instance.defaults``).

MLflow without a server: unless the environment of ``mlwf`` already defines it, every
component gets the ``mlwf_mlflow_default`` connection with tracking URI
``sqlite:///<AIRFLOW_HOME>/mlwf/mlflow.db``, which the MLflow client opens directly (this needs
the full ``mlflow`` package). A team points it at its tracking server by setting
``AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT`` (or a connection in its secrets backend). Imports nothing
heavy: mlwf-instance calls :func:`instance_defaults` with a read-only context.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: The environment variable of the default MLflow connection.
MLFLOW_CONNECTION_ENV = "AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT"


def instance_defaults(context: Any) -> dict[str, dict[str, str]]:
    """Return the default MLflow connection of the instance described by ``context``."""
    if MLFLOW_CONNECTION_ENV in os.environ:
        return {}  # the user's connection wins
    store = context.airflow_home / "mlwf" / "mlflow.db"
    connection = {"conn_type": "mlwf_mlflow", "host": f"sqlite:///{store}"}
    return {"environment": {MLFLOW_CONNECTION_ENV: json.dumps(connection)}}
