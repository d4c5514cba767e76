"""What an InstanceSpec means on this machine: its components, Celery options and DAG bundles.

:func:`spec_options` turns the spec's executor and broker into Airflow options; the
``airflow_config`` of a spec may add options but not replace one the spec owns
(``_spec_owned.OWNED_AIRFLOW_OPTIONS``, refused by :func:`check_airflow_config` with the option's JSON path).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from mlwf_instance._celery import RECOVERY_OPTIONS
from mlwf_instance._database import DatabaseUrls
from mlwf_instance._spec import InstanceSpec, SpecError
from mlwf_instance._spec_owned import owned_option

#: The long-running Airflow components of every instance, in start order. The api-server also
#: serves task and triggerer logs on loopback (see :mod:`mlwf_instance._log_server`) instead of
#: the scheduler's and the triggerer's own log servers, which bind every interface on fixed ports.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Name of Celery worker ``n`` (from 1) as a component.
WORKER_PREFIX = "worker-"
#: Module whose ``CELERY_CONFIG`` the workers and the scheduler load (mlwf's Celery tuning).
CELERY_CONFIG_MODULE = "mlwf_instance._celery_config"

#: Where the stand-in for ``MySQLdb.converters`` lives (see _mysqldb_compat/README.md).
MYSQLDB_COMPAT = Path(__file__).parent / "_mysqldb_compat"
#: Where the scheduler's MariaDB query fix lives (see _mariadb_compat/README.md).
MARIADB_COMPAT = Path(__file__).parent / "_mariadb_compat"


def check_airflow_config(spec: InstanceSpec, source: str = "spec") -> None:
    """Raise SpecError naming ``airflow_config.<section>.<key>`` for every option the spec owns.

    Validation already refuses them (same table, ``_spec_owned``); this catches a spec changed
    without validation (``model_copy(update=...)``) before it reaches Airflow.
    """
    errors = []
    for section, options in spec.airflow_config.items():
        for key in options:
            owner = owned_option(section, key)
            if owner is not None:
                errors.append((f"airflow_config.{section}.{key}", f"set by {owner}"))
    if errors:
        raise SpecError(source, errors)


def worker_names(spec: InstanceSpec) -> tuple[str, ...]:
    """Return the Celery worker components of ``spec`` (none unless the executor is celery)."""
    if spec.executor != "celery":
        return ()
    return tuple(f"{WORKER_PREFIX}{n}" for n in range(1, spec.celery.workers + 1))


def worker_args(spec: InstanceSpec, name: str) -> tuple[str, ...]:
    """Return the ``airflow`` CLI arguments of worker component ``name``."""
    return (
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@%h",
        "--concurrency",
        str(spec.celery.concurrency),
        "--queues",
        ",".join(spec.celery.queues),
        "--skip-serve-logs",
    )


def dag_bundle_names(spec: InstanceSpec) -> list[str]:
    """Return one bundle name per DAG folder: its ``name``, else ``dags-folder``, ``dags-folder-2``…"""
    names = []
    for index, folder in enumerate(spec.dag_folders):
        if folder.name is not None:
            names.append(folder.name)
        else:
            names.append("dags-folder" if index == 0 else f"dags-folder-{index + 1}")
    return names


def broker_url(spec: InstanceSpec, database: DatabaseUrls, broker_password: str | None) -> str:
    """Return ``[celery] broker_url``: the metadata DB via kombu's SQLAlchemy transport, or the URL."""
    if spec.celery.broker == "database":
        return f"sqla+{database.sync}"
    if broker_password is None:
        return spec.celery.broker
    parts = urlsplit(spec.celery.broker)
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{quote(broker_password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def celery_config_module_available() -> bool:
    """Return whether mlwf's Celery configuration module is installed (see the celery helper)."""
    return importlib.util.find_spec(CELERY_CONFIG_MODULE) is not None


def spec_options(
    spec: InstanceSpec, database: DatabaseUrls, broker_password: str | None
) -> dict[str, dict[str, str]]:
    """Return the Airflow options ``spec``'s executor decides."""
    if spec.executor != "celery":
        return {"core": {"executor": "LocalExecutor"}}
    celery = {
        "broker_url": broker_url(spec, database, broker_password),
        "result_backend": f"db+{database.sync}",
        "worker_concurrency": str(spec.celery.concurrency),
    }
    if celery_config_module_available():
        celery["celery_config_options"] = f"{CELERY_CONFIG_MODULE}.CELERY_CONFIG"
    # A killed worker's tasks run again within about a minute (docs/mlwf-instance/celery.md);
    # the spec's airflow_config may override each of these.
    options = {section: dict(values) for section, values in RECOVERY_OPTIONS.items()}
    options["core"].update(
        {
            "executor": "CeleryExecutor",
            # Tasks queued at once across all workers.
            "parallelism": str(spec.celery.workers * spec.celery.concurrency),
        }
    )
    options["celery"] = celery
    # Each Celery worker would fork a process (~50 MiB) that every 30 min removes local copies
    # of old versions of versioned (e.g. Git) bundles; a spec's bundles are local folders,
    # never copied. airflow_config may turn it back on.
    options["dag_processor"] = {"stale_bundle_cleanup_interval": "0"}
    # Tasks without an explicit queue go to the first queue the workers listen on.
    options["operators"] = {"default_queue": spec.celery.queues[0]}
    return options


def mysql_compat_paths(database: DatabaseUrls) -> tuple[Path, ...]:
    """Folders Airflow's processes need on their PYTHONPATH for ``database``.

    MySQL/MariaDB: always the scheduler's query fix; the ``MySQLdb`` stand-in too when
    mysqlclient is not installed (the real module must not be shadowed).
    """
    if database.kind != "mysql":
        return ()
    if importlib.util.find_spec("MySQLdb") is None:
        return (MARIADB_COMPAT, MYSQLDB_COMPAT)
    return (MARIADB_COMPAT,)
