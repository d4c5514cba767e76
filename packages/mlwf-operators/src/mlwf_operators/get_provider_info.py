"""What mlwf-operators registers with Airflow (entry point ``apache_airflow_provider``).

The single declared source of the hooks, connection types (with their connection-form fields,
declared here as Airflow 3.2+ expects instead of ``get_ui_field_behaviour``), operators and sensors.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_NUMBER: dict[str, Any] = {"type": ["number", "null"]}
_INTEGER: dict[str, Any] = {"type": ["integer", "null"]}

_CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "hook-class-name": "mlwf_operators.hooks.hdfs.HdfsHook",
        "hook-name": "HDFS (WebHDFS, mlwf)",
        "connection-type": "mlwf_hdfs",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "password"],
            "relabeling": {"host": "NameNode host", "port": "WebHDFS port", "login": "HDFS user"},
            "placeholders": {"host": "namenode.example.com", "port": "9870", "login": "airflow"},
        },
        "conn-fields": {
            "schema": {
                "label": "Protocol (http or https)",
                "schema": {"type": ["string", "null"], "enum": ["http", "https", None]},
            },
            "timeout": {"label": "Timeout (seconds)", "schema": _NUMBER},
        },
    },
    {
        "hook-class-name": "mlwf_operators.hooks.jira.JiraHook",
        "hook-name": "JIRA (mlwf)",
        "connection-type": "mlwf_jira",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "JIRA URL", "login": "User", "password": "Password"},
            "placeholders": {"host": "https://jira.example.com"},
        },
        "conn-fields": {
            "token": {
                "label": "Personal access token",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "timeout": {"label": "Timeout (seconds)", "schema": _NUMBER},
            "max_retries": {"label": "Retries of 429/503 and network errors", "schema": _INTEGER},
        },
    },
    {
        "hook-class-name": "mlwf_operators.hooks.jenkins.JenkinsHook",
        "hook-name": "Jenkins (mlwf)",
        "connection-type": "mlwf_jenkins",
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"host": "Jenkins URL or host", "login": "User", "password": "API token"},
            "placeholders": {"host": "https://ci.example.com"},
        },
        "conn-fields": {
            "scheme": {"label": "Scheme when host is not a URL", "schema": _TEXT},
            "timeout": {"label": "Timeout (seconds)", "schema": _NUMBER},
        },
    },
    {
        "hook-class-name": "mlwf_operators.hooks.mlflow.MlflowHook",
        "hook-name": "MLflow tracking server (mlwf)",
        "connection-type": "mlwf_mlflow",
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"host": "Tracking URI or host"},
            "placeholders": {"host": "http://mlflow.example.com:5000"},
        },
        "conn-fields": {
            "max_retries": {"label": "HTTP retries", "schema": _INTEGER},
            "timeout": {"label": "Timeout (seconds)", "schema": _NUMBER},
        },
    },
]

_INTEGRATIONS = {
    "HDFS (WebHDFS)": ("hooks.hdfs", ["operators.hdfs"], ["sensors.hdfs"]),
    "JIRA": ("hooks.jira", ["operators.jira"], ["sensors.jira"]),
    "Jenkins": ("hooks.jenkins", ["operators.jenkins"], []),
    "MLflow": ("hooks.mlflow", ["operators.model_registry"], []),
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow's ProvidersManager reads."""
    pkg = "mlwf_operators."
    return {
        "package-name": "mlwf-operators",
        "name": "ML Workflows operators",
        "description": "Typed ML operators and HDFS, JIRA, Jenkins and MLflow hooks, operators and sensors (ML Workflows).",
        "versions": [version("mlwf-operators")],
        "integrations": [
            {"integration-name": name, "tags": ["software"]} for name in _INTEGRATIONS
        ],
        "hooks": [
            {"integration-name": name, "python-modules": [pkg + hook]}
            for name, (hook, _, _) in _INTEGRATIONS.items()
        ],
        "operators": [
            {"integration-name": name, "python-modules": [pkg + m for m in operators]}
            for name, (_, operators, _) in _INTEGRATIONS.items()
        ],
        "sensors": [
            {"integration-name": name, "python-modules": [pkg + m for m in sensors]}
            for name, (_, _, sensors) in _INTEGRATIONS.items()
            if sensors
        ],
        "connection-types": _CONNECTION_TYPES,
        # ObjectStoragePath schemes (hdfs://), used for model artifact locations
        "filesystems": [pkg + "fs.hdfs"],
    }
