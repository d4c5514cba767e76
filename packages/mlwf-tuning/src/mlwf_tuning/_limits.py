"""``[mlwf_tuning] max_experiments``: the most experiments one tuning may plan.

A spec arrives from untrusted users (a ``hyperparameter_tuning`` instance created through the
API), and everything sized by it (the grid Optuna enumerates, the up-front plan, the records)
grows with it; the bound keeps a 100-byte spec from costing unbounded time or memory.
"""

from __future__ import annotations

#: The default of ``[mlwf_tuning] max_experiments``.
DEFAULT_MAX_EXPERIMENTS = 10_000
CONFIG_SECTION = "mlwf_tuning"


def max_experiments() -> int:
    """Return ``[mlwf_tuning] max_experiments`` (default 10,000), at least 1."""
    try:
        from airflow.configuration import conf
    except (
        ImportError
    ):  # pragma: no cover - Airflow is a dependency; a bare install keeps the default
        return DEFAULT_MAX_EXPERIMENTS
    value = conf.getint(CONFIG_SECTION, "max_experiments", fallback=DEFAULT_MAX_EXPERIMENTS)
    return max(1, value)
