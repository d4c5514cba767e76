"""mlwf-operators: Typed ML operators (train, validate, serve, load-test) and utility operators (HDFS, JIRA, Jenkins, MLflow model registry) as an Airflow provider"""

from importlib.metadata import version as _version

__version__ = _version("mlwf-operators")

# ML operators and helpers, imported on first use: ``import mlwf_operators`` stays cheap for the
# trainer and service child processes, which must not pay for importing Airflow.
_LAZY = {
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


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlwf_operators' has no attribute {name!r}")


__all__ = [
    "__version__",
    # ML: train, validate, serve, load-test
    "TrainModelOperator",
    "ValidateModelOperator",
    "ModelValidationError",
    "ServeModelOperator",
    "StopModelServiceOperator",
    "LoadTestOperator",
    "SLOMissedError",
    "LoadTestResult",
    "run_load",
    "ArtifactStore",
    "LocalArtifactStore",
    "register_artifact_store",
    "artifact_store_for",
    # External systems: HDFS, JIRA, Jenkins, MLflow model registry
    "ExternalServiceError",
    "ConnectionConfigError",
    "HdfsHook",
    "JiraHook",
    "JenkinsHook",
    "MlflowHook",
    "HdfsUploadOperator",
    "HdfsDownloadOperator",
    "HdfsListOperator",
    "HdfsRenameOperator",
    "HdfsDeleteOperator",
    "HdfsMkdirOperator",
    "JiraCreateIssueOperator",
    "JiraUpdateIssueOperator",
    "JiraCommentOperator",
    "JiraTransitionOperator",
    "JenkinsJobOperator",
    "RecordModelVersionOperator",
    "HdfsPathSensor",
    "JiraIssueSensor",
]
