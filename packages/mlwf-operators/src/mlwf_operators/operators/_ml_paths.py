"""Default locations of ML artifacts and service state files, relative to ``$AIRFLOW_HOME``."""

from __future__ import annotations

import os
import re
from pathlib import Path


def airflow_home() -> Path:
    """Return ``$AIRFLOW_HOME`` (Airflow's default ``~/airflow`` when unset)."""
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser().resolve()


def safe_name(text: str) -> str:
    """Return ``text`` usable as one path component (run ids hold ``:`` and ``+``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


def default_artifact_root() -> str:
    """Return the default artifact location: ``$AIRFLOW_HOME/mlwf/artifacts`` as a file URI."""
    return (airflow_home() / "mlwf" / "artifacts").as_uri()


def service_state_file(state_dir: str | None, dag_id: str, run_id: str, serve_task_id: str) -> Path:
    """Return where the serve task of one DAG run records its service."""
    root = Path(state_dir).expanduser() if state_dir else airflow_home() / "mlwf" / "services"
    return root / f"{safe_name(dag_id)}__{safe_name(run_id)}__{safe_name(serve_task_id)}.json"
