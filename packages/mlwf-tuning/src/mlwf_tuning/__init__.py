"""mlwf-tuning: Hyperparameter tuning of any DAG constructor as an Airflow DAG: grid, random and Bayesian search, with results recorded and reported"""

from importlib.metadata import version as _version

__version__ = _version("mlwf-tuning")

__all__ = ["__version__"]
