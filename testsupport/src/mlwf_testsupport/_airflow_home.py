"""Throwaway AIRFLOW_HOMEs for in-process Airflow tests."""

from __future__ import annotations

from pathlib import Path


def airflow_home_env(home: Path) -> dict[str, str]:
    """Create ``home`` (with ``dags/``) and return the minimal environment of an Airflow on it.

    SQLite metadata DB inside the home, no example DAGs, and ``unit_test_mode`` (Airflow then
    loads its unit-test defaults and writes no airflow.cfg). ``AIRFLOW_HOME`` is read when
    ``airflow`` is first imported; the ``AIRFLOW__*`` options are read on every lookup.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }
