"""What mlwf-operators registers with Airflow (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

_HOOKS = {
    "HDFS (WebHDFS)": ("mlwf_operators.hooks.hdfs", "HdfsHook", "mlwf_hdfs"),
    "JIRA": ("mlwf_operators.hooks.jira", "JiraHook", "mlwf_jira"),
    "Jenkins": ("mlwf_operators.hooks.jenkins", "JenkinsHook", "mlwf_jenkins"),
    "MLflow": ("mlwf_operators.hooks.mlflow", "MlflowHook", "mlwf_mlflow"),
}
_OPERATORS = {
    "HDFS (WebHDFS)": ["mlwf_operators.operators.hdfs"],
    "JIRA": ["mlwf_operators.operators.jira"],
    "Jenkins": ["mlwf_operators.operators.jenkins"],
    "MLflow": ["mlwf_operators.operators.model_registry"],
}
_SENSORS = {
    "HDFS (WebHDFS)": ["mlwf_operators.sensors.hdfs"],
    "JIRA": ["mlwf_operators.sensors.jira"],
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow's ProvidersManager reads."""
    return {
        "package-name": "mlwf-operators",
        "name": "ML Workflows operators",
        "description": "Typed ML operators and HDFS, JIRA, Jenkins and MLflow hooks, operators and sensors (ML Workflows).",
        "versions": [version("mlwf-operators")],
        "integrations": [{"integration-name": name, "tags": ["software"]} for name in _HOOKS],
        "hooks": [
            {"integration-name": name, "python-modules": [module]}
            for name, (module, _, _) in _HOOKS.items()
        ],
        "operators": [
            {"integration-name": name, "python-modules": modules}
            for name, modules in _OPERATORS.items()
        ],
        "sensors": [
            {"integration-name": name, "python-modules": modules}
            for name, modules in _SENSORS.items()
        ],
        "connection-types": [
            {"hook-class-name": f"{module}.{cls}", "connection-type": conn_type}
            for module, cls, conn_type in _HOOKS.values()
        ],
    }
