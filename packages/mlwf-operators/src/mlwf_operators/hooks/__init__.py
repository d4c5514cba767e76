"""Hooks of the external systems: HDFS (WebHDFS), JIRA, Jenkins and MLflow."""

from __future__ import annotations

from airflow import __version__ as _airflow_version
from packaging.version import Version as _Version

# Like Airflow's own providers: refuse a too-old Airflow with a clear message, not an obscure
# AttributeError later. Every hook, operator and sensor module of this package imports this one.
if _Version(_Version(_airflow_version).base_version) < _Version("3.3.0"):
    raise RuntimeError(
        f"mlwf-operators needs Apache Airflow 3.3 or newer (hooks for HDFS, JIRA, Jenkins, MLflow); "
        f"this environment has Airflow {_airflow_version}. Upgrade with: pip install 'apache-airflow>=3.3,<4'"
    )

from mlwf_operators.hooks._errors import ConnectionConfigError, ExternalServiceError
from mlwf_operators.hooks.hdfs import HdfsHook
from mlwf_operators.hooks.jenkins import JenkinsBuild, JenkinsHook
from mlwf_operators.hooks.jira import JiraHook
from mlwf_operators.hooks.mlflow import MlflowHook, RecordedModelVersion

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
