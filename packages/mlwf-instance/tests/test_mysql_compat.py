"""Airflow 3.3.2 on MariaDB through PyMySQL: the stand-ins mlwf puts on a MySQL instance's PYTHONPATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlwf_instance._topology import MYSQLDB_COMPAT

ORPHANAGE = """
from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
SchedulerJobRunner._update_asset_orphanage(object.__new__(SchedulerJobRunner))
print("orphanage ok")
"""


def _env(url: str, home: Path, python_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url.replace("+pymysql", "+aiomysql"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(python_path),
    }


def test_scheduler_asset_orphanage_runs_on_mariadb(mariadb_url: str, tmp_path: Path) -> None:
    """Issue 11: with mlwf's compat folder Airflow migrates MariaDB over PyMySQL and the scheduler's asset-orphanage query runs; without its patch MariaDB refuses the CTE in DELETE (error 1064)."""
    env = _env(mariadb_url, tmp_path / "airflow", MYSQLDB_COMPAT)
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    patched = subprocess.run(
        [sys.executable, "-c", ORPHANAGE], env=env, capture_output=True, text=True, timeout=300
    )
    assert patched.returncode == 0, patched.stderr[-2000:]
    assert "orphanage ok" in patched.stdout
    # The MySQLdb stand-in alone (no sitecustomize): Airflow's own query fails on MariaDB.
    alone = tmp_path / "stand-in-only"
    shutil.copytree(MYSQLDB_COMPAT / "MySQLdb", alone / "MySQLdb")
    unpatched = subprocess.run(
        [sys.executable, "-c", ORPHANAGE],
        env=_env(mariadb_url, tmp_path / "airflow", alone),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unpatched.returncode != 0
    assert "1064" in unpatched.stderr and "DELETE FROM asset_active" in unpatched.stderr
