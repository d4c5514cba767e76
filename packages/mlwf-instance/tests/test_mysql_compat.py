"""Airflow 3.3.2 on MariaDB through PyMySQL: the stand-ins mlwf puts on a MySQL instance's PYTHONPATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_instance._database import database_urls
from mlwf_instance._topology import MARIADB_COMPAT, MYSQLDB_COMPAT, mysql_compat_paths

ORPHANAGE = """
from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
SchedulerJobRunner._update_asset_orphanage(object.__new__(SchedulerJobRunner))
print("orphanage ok")
"""


def _env(url: str, home: Path, *python_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url.replace("+pymysql", "+aiomysql"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": ":".join(map(str, python_path)),
    }


def test_scheduler_asset_orphanage_runs_on_mariadb(mariadb_url: str, tmp_path: Path) -> None:
    """Issue 11: with mlwf's compat folder Airflow migrates MariaDB over PyMySQL and the scheduler's asset-orphanage query runs; without its patch MariaDB refuses the CTE in DELETE (error 1064)."""
    env = _env(mariadb_url, tmp_path / "airflow", MARIADB_COMPAT, MYSQLDB_COMPAT)
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


def test_the_mariadb_fix_applies_whichever_driver_and_the_stand_in_only_without_mysqlclient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's query fix is on every MySQL instance's path; the MySQLdb stand-in only
    when mysqlclient is missing (it must never shadow the real module)."""
    import importlib.util

    from mlwf_instance._render import render
    from mlwf_instance._spec import parse_spec

    mysql = database_urls("mysql://u@h/d", password=None, sqlite_file=tmp_path / "x.db")
    postgres = database_urls("postgresql://u@h/d", password=None, sqlite_file=tmp_path / "x.db")
    assert mysql_compat_paths(postgres) == ()
    real = importlib.util.find_spec
    for installed, expected in (
        (False, (MARIADB_COMPAT, MYSQLDB_COMPAT)),
        (True, (MARIADB_COMPAT,)),
    ):
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *rest, _i=installed: (
                (real("json") if _i else None) if name == "MySQLdb" else real(name, *rest)
            ),
        )
        assert mysql_compat_paths(mysql) == expected
        # The local render's environment carries the same folders.
        spec = parse_spec({"name": "team", "home": str(tmp_path), "database": "mysql://u@h/d"})
        env = {f.path: f.content for f in render(spec, "local")}["instance.env"]
        line = next(x for x in env.splitlines() if "PYTHONPATH=" in x)
        assert all(str(folder) in line for folder in expected)
        assert (str(MYSQLDB_COMPAT) in line) is (not installed)
    assert (MARIADB_COMPAT / "sitecustomize.py").is_file()
    assert not (MYSQLDB_COMPAT / "sitecustomize.py").exists()
