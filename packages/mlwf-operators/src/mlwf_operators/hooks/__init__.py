"""Hooks of the external systems: HDFS (WebHDFS), JIRA, Jenkins and MLflow.

Every hook, operator and sensor module of the external systems imports this package first, so
this is where a too-old Airflow is refused. Hooks load lazily: a broken client library of one
system never hides the hooks of the others (``airflow providers hooks`` imports them one by one).
"""

from __future__ import annotations

import importlib

from airflow import __version__ as _airflow_version
from packaging.version import Version as _Version

from mlwf_operators.hooks._errors import ConnectionConfigError, ExternalServiceError

# Like Airflow's own providers: refuse a too-old Airflow with a clear message, not an obscure
# AttributeError later.
if _Version(_Version(_airflow_version).base_version) < _Version("3.3.0"):
    raise RuntimeError(
        f"mlwf-operators needs Apache Airflow 3.3 or newer (hooks for HDFS, JIRA, Jenkins, MLflow); "
        f"this environment has Airflow {_airflow_version}. Upgrade with: pip install 'apache-airflow>=3.3,<4'"
    )

_LAZY = {
    "HdfsHook": "mlwf_operators.hooks.hdfs",
    "JiraHook": "mlwf_operators.hooks.jira",
    "JenkinsHook": "mlwf_operators.hooks.jenkins",
    "JenkinsBuild": "mlwf_operators.hooks.jenkins",
    "MlflowHook": "mlwf_operators.hooks.mlflow",
    "RecordedModelVersion": "mlwf_operators.hooks.mlflow",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlwf_operators.hooks' has no attribute {name!r}")


__all__ = [
    "ExternalServiceError",
    "ConnectionConfigError",
    "HdfsHook",
    "JiraHook",
    "JenkinsHook",
    "JenkinsBuild",
    "MlflowHook",
    "RecordedModelVersion",
]
