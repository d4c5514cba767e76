"""mlwf-operators: Typed ML operators (train, validate, serve, load-test) and utility operators (HDFS, JIRA, Jenkins, MLflow model registry) as an Airflow provider"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # What type checkers see: the real classes and functions (``X as X`` re-exports them under
    # mypy --strict). At run time nothing here is imported; ``_LAZY`` below is the one table,
    # and a unit test checks that these imports name exactly its entries.
    from mlwf_operators.artifacts import (
        ArtifactStore as ArtifactStore,
        LocalArtifactStore as LocalArtifactStore,
        artifact_store_for as artifact_store_for,
        register_artifact_store as register_artifact_store,
    )
    from mlwf_operators.hooks import (
        ConnectionConfigError as ConnectionConfigError,
        ExternalServiceError as ExternalServiceError,
    )
    from mlwf_operators.hooks.hdfs import HdfsHook as HdfsHook
    from mlwf_operators.hooks.jenkins import JenkinsHook as JenkinsHook
    from mlwf_operators.hooks.jira import JiraHook as JiraHook
    from mlwf_operators.hooks.mlflow import MlflowHook as MlflowHook
    from mlwf_operators.loadgen import (
        LoadTestResult as LoadTestResult,
        run_load as run_load,
    )
    from mlwf_operators.operators.hdfs import (
        HdfsDeleteOperator as HdfsDeleteOperator,
        HdfsDownloadOperator as HdfsDownloadOperator,
        HdfsListOperator as HdfsListOperator,
        HdfsMkdirOperator as HdfsMkdirOperator,
        HdfsRenameOperator as HdfsRenameOperator,
        HdfsUploadOperator as HdfsUploadOperator,
    )
    from mlwf_operators.operators.jenkins import JenkinsJobOperator as JenkinsJobOperator
    from mlwf_operators.operators.jira import (
        JiraCommentOperator as JiraCommentOperator,
        JiraCreateIssueOperator as JiraCreateIssueOperator,
        JiraTransitionOperator as JiraTransitionOperator,
        JiraUpdateIssueOperator as JiraUpdateIssueOperator,
    )
    from mlwf_operators.operators.load_test import (
        LoadTestOperator as LoadTestOperator,
        SLOMissedError as SLOMissedError,
    )
    from mlwf_operators.operators.model_registry import (
        RecordModelVersionOperator as RecordModelVersionOperator,
    )
    from mlwf_operators.operators.serving import (
        ServeModelOperator as ServeModelOperator,
        StopModelServiceOperator as StopModelServiceOperator,
    )
    from mlwf_operators.operators.training import TrainModelOperator as TrainModelOperator
    from mlwf_operators.operators.validation import (
        ModelValidationError as ModelValidationError,
        ValidateModelOperator as ValidateModelOperator,
    )
    from mlwf_operators.sensors.hdfs import HdfsPathSensor as HdfsPathSensor
    from mlwf_operators.sensors.jira import JiraIssueSensor as JiraIssueSensor

__version__ = _version("mlwf-operators")

# Every public name -> the module defining it, imported on first use: ``import mlwf_operators``
# stays cheap for DAG files and for the trainer and service child processes, which must not pay
# for importing Airflow.
_LAZY: dict[str, str] = {
    "TrainModelOperator": "mlwf_operators.operators.training",
    "ValidateModelOperator": "mlwf_operators.operators.validation",
    "ModelValidationError": "mlwf_operators.operators.validation",
    "ServeModelOperator": "mlwf_operators.operators.serving",
    "StopModelServiceOperator": "mlwf_operators.operators.serving",
    "LoadTestOperator": "mlwf_operators.operators.load_test",
    "SLOMissedError": "mlwf_operators.operators.load_test",
    "LoadTestResult": "mlwf_operators.loadgen",
    "run_load": "mlwf_operators.loadgen",
    "ArtifactStore": "mlwf_operators.artifacts",
    "LocalArtifactStore": "mlwf_operators.artifacts",
    "register_artifact_store": "mlwf_operators.artifacts",
    "artifact_store_for": "mlwf_operators.artifacts",
    # External systems: HDFS, JIRA, Jenkins, MLflow model registry
    "ExternalServiceError": "mlwf_operators.hooks",
    "ConnectionConfigError": "mlwf_operators.hooks",
    "HdfsHook": "mlwf_operators.hooks.hdfs",
    "JiraHook": "mlwf_operators.hooks.jira",
    "JenkinsHook": "mlwf_operators.hooks.jenkins",
    "MlflowHook": "mlwf_operators.hooks.mlflow",
    "HdfsUploadOperator": "mlwf_operators.operators.hdfs",
    "HdfsDownloadOperator": "mlwf_operators.operators.hdfs",
    "HdfsListOperator": "mlwf_operators.operators.hdfs",
    "HdfsRenameOperator": "mlwf_operators.operators.hdfs",
    "HdfsDeleteOperator": "mlwf_operators.operators.hdfs",
    "HdfsMkdirOperator": "mlwf_operators.operators.hdfs",
    "JiraCreateIssueOperator": "mlwf_operators.operators.jira",
    "JiraUpdateIssueOperator": "mlwf_operators.operators.jira",
    "JiraCommentOperator": "mlwf_operators.operators.jira",
    "JiraTransitionOperator": "mlwf_operators.operators.jira",
    "JenkinsJobOperator": "mlwf_operators.operators.jenkins",
    "RecordModelVersionOperator": "mlwf_operators.operators.model_registry",
    "HdfsPathSensor": "mlwf_operators.sensors.hdfs",
    "JiraIssueSensor": "mlwf_operators.sensors.jira",
}

__all__ = ["__version__", *_LAZY]

if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name is an error there

    def __getattr__(name: str) -> Any:
        """Import the module defining ``name`` on first access and keep the value."""
        try:
            module = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'mlwf_operators' has no attribute {name!r}") from None
        value = getattr(import_module(module), name)
        globals()[name] = value  # later accesses skip __getattr__
        return value

    def __dir__() -> list[str]:
        """List the public names too, before their first access."""
        return sorted({*globals(), *__all__})
