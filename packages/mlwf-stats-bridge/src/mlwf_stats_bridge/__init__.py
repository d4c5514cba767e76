"""mlwf-stats-bridge: Airflow's StatsD metrics straight into a Prometheus registry.

Set ``[metrics] statsd_on = True`` and
``statsd_custom_client_path = mlwf_stats_bridge.PrometheusStatsClient``. The Airflow plugin
(``/mlwf-stats-bridge/metrics``) is the module :mod:`mlwf_stats_bridge.plugin`, imported only by
Airflow's plugin manager: importing this package does not import Airflow.
"""

from importlib.metadata import version as _version

from mlwf_stats_bridge._airflow_metrics import AIRFLOW_METRICS
from mlwf_stats_bridge._client import (
    DEFAULT_MAX_SERIES,
    DEFAULT_MAX_UNMAPPED,
    LEGACY_NAMES_ENV,
    MAX_SERIES_ENV,
    MAX_UNMAPPED_ENV,
    OVERFLOW,
    BridgePipeline,
    PrometheusStatsClient,
)
from mlwf_stats_bridge._dashboard import dashboard, panel_queries
from mlwf_stats_bridge._errors import (
    InvalidRuleError,
    InvalidSettingError,
    InvalidStatError,
    StatsBridgeError,
)
from mlwf_stats_bridge._exposition import exposition, remove_dead_processes
from mlwf_stats_bridge._rules import RULES_ENV, Mapped, Mapper, Rule, parse_rule_file, sanitize_name

__version__ = _version("mlwf-stats-bridge")

__all__ = [
    "PrometheusStatsClient",
    "BridgePipeline",
    "Mapper",
    "Mapped",
    "Rule",
    "parse_rule_file",
    "sanitize_name",
    "exposition",
    "remove_dead_processes",
    "dashboard",
    "panel_queries",
    "AIRFLOW_METRICS",
    "StatsBridgeError",
    "InvalidStatError",
    "InvalidRuleError",
    "InvalidSettingError",
    "MAX_SERIES_ENV",
    "MAX_UNMAPPED_ENV",
    "LEGACY_NAMES_ENV",
    "RULES_ENV",
    "DEFAULT_MAX_SERIES",
    "DEFAULT_MAX_UNMAPPED",
    "OVERFLOW",
    "__version__",
]
