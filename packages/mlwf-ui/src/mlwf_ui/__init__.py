"""mlwf-ui: Airflow UI pages for DAG constructors and hyperparameter tunings: a React plugin calling the packages' HTTP APIs"""

from importlib.metadata import version as _version

__version__ = _version("mlwf-ui")

__all__ = ["__version__"]
