"""The ``[mlwf_tuning]`` settings a tuning DAG reads at run time: its store and its stall timeout.

(``max_experiments``, checked when a spec is validated, is in ``_limits``.)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mlwf_tuning._errors import TuningError
from mlwf_tuning._spec import HyperparameterTuningSpec
from mlwf_tuning._store import SqlExperimentStore

#: ``[mlwf_tuning] store_url``: where tuning DAGs record experiments (see ``default_store_url``).
CONFIG_SECTION = "mlwf_tuning"
#: Executors whose tasks all run on the host of the scheduler: a SQLite file there is shared.
#: (Airflow 3 has no Sequential or Debug executor any more.)
_SINGLE_HOST_EXECUTORS = frozenset({"LocalExecutor"})
#: The default store's file in ``$AIRFLOW_HOME`` on a single-host executor.
DEFAULT_STORE_FILE = "mlwf_tuning.db"
#: The default of ``[mlwf_tuning] experiment_timeout_s``: how long a round waits without any of
#: its experiment runs ending before it records those still going as failed (a day).
DEFAULT_EXPERIMENT_TIMEOUT_S = 86_400.0


def default_store_url() -> str:
    """Return ``[mlwf_tuning] store_url``; else, on a single-host executor, a SQLite file in ``$AIRFLOW_HOME``.

    Not the Airflow metadata database: Airflow 3 task processes may not reach it (the Task SDK
    replaces ``[database] sql_alchemy_conn`` in every task process). With an executor whose
    tasks run on several hosts (Celery, Kubernetes, ...) a file would not be shared, so
    ``store_url`` must then name a shared database; the error says so.
    """
    from airflow.configuration import conf

    url = conf.get(CONFIG_SECTION, "store_url", fallback=None)
    if url:
        return url
    executors = [
        e.strip().split(":")[-1].rsplit(".", 1)[-1]
        for e in (conf.get("core", "executor", fallback="") or "").split(",")
        if e.strip()
    ]
    if executors and all(e in _SINGLE_HOST_EXECUTORS for e in executors):
        from airflow.configuration import AIRFLOW_HOME

        home = Path(os.environ.get("AIRFLOW_HOME") or AIRFLOW_HOME).expanduser().resolve()
        return f"sqlite:///{home / DEFAULT_STORE_FILE}"
    raise TuningError(
        f"no experiment store: set [{CONFIG_SECTION}] store_url (env "
        f"AIRFLOW__{CONFIG_SECTION.upper()}__STORE_URL) to a SQLAlchemy URL of a database every "
        f"worker can reach; the executor {', '.join(executors) or '(none)'} runs tasks on several "
        "hosts, and Airflow 3 tasks may not use the metadata database"
    )


@functools.cache
def open_store(url: str) -> SqlExperimentStore:
    """Return the ``SqlExperimentStore`` on ``url``, one per URL and process (its engine pools connections)."""
    return SqlExperimentStore(url)


def experiment_timeout_s(spec: HyperparameterTuningSpec) -> float:
    """Return the spec's ``experiment_timeout_s``, else ``[mlwf_tuning] experiment_timeout_s`` (a day)."""
    if spec.experiment_timeout_s is not None:
        return spec.experiment_timeout_s
    from airflow.configuration import conf

    return conf.getfloat(
        CONFIG_SECTION, "experiment_timeout_s", fallback=DEFAULT_EXPERIMENT_TIMEOUT_S
    )
