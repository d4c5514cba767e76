"""mlwf-operators: Typed ML operators (train, validate, serve, load-test) and utility operators (HDFS, JIRA, Jenkins, MLflow model registry) as an Airflow provider"""

from importlib.metadata import version as _version

__version__ = _version("mlwf-operators")

__all__ = ["__version__"]
