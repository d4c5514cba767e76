"""mlwf-stats-bridge: A StatsD client that feeds Airflow's metrics straight into a Prometheus registry, with labels, a cardinality cap and its own /metrics"""

from importlib.metadata import version as _version

__version__ = _version("mlwf-stats-bridge")

__all__ = ["__version__"]
