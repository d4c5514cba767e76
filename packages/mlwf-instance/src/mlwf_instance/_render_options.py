"""The Airflow options of a spec's instance, without its secrets, for any render target.

:func:`airflow_options` is the one place that turns a spec into ``{section: {key: value}}``;
every target (local, Helm values, Kubernetes ConfigMap) writes what it returns, so the three
agree. Targets differ only in their :class:`Layout` (where homes, DAG bundles and logs live)
and in how they supply the secret-bearing options of :data:`SECRET_OPTIONS` (Kubernetes
Secrets as environment variables, local files through Airflow's ``_cmd`` options): no value
returned here is ever a secret.

When the runtime's option builder (``mlwf instance up``) lands, :func:`_instance_options`
becomes a call to it; the rest of this module stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from mlwf_instance._render_model import (
    API_SECRET,
    BROKER,
    CONSTRUCTED_BUNDLE,
    FERNET,
    JWT_SECRET,
    METADATA,
    Bundle,
    RenderError,
    SecretItem,
)
from mlwf_instance._spec import InstanceSpec

LOCAL_DAG_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
STATS_CLIENT = "mlwf_stats_bridge.PrometheusStatsClient"


@dataclass(frozen=True)
class SecretOption:
    """An Airflow option whose value is a secret, and the secret that supplies it."""

    section: str
    key: str
    secret: SecretItem

    @property
    def env(self) -> str:
        """The ``AIRFLOW__SECTION__KEY`` variable that sets the option."""
        return f"AIRFLOW__{self.section.upper()}__{self.key.upper()}"


#: Every secret-bearing option a rendered instance sets; ``[celery] broker_url`` only with Celery.
SECRET_OPTIONS = (
    SecretOption("database", "sql_alchemy_conn", METADATA),
    SecretOption("celery", "broker_url", BROKER),
    SecretOption("core", "fernet_key", FERNET),
    SecretOption("api", "secret_key", API_SECRET),
    SecretOption("api_auth", "jwt_secret", JWT_SECRET),
)


def secret_options(spec: InstanceSpec) -> list[SecretOption]:
    """Return the secret-bearing options instance ``spec`` sets."""
    return [o for o in SECRET_OPTIONS if o.secret is not BROKER or spec.executor == "celery"]


@dataclass(frozen=True)
class Layout:
    """Where one target puts an instance's files and how its components reach each other."""

    #: AIRFLOW_HOME of every component.
    airflow_home: str
    #: ``(bundle, folder)`` of each DAG folder of the spec, in the target's file system.
    bundles: tuple[tuple[Bundle, str], ...]
    #: Folder of the ``mlwf-constructed`` bundle (generated files of DAG constructor instances).
    constructed: str
    #: SimpleAuthManager's passwords file (a mounted Secret on a cluster).
    passwords_file: str
    #: Address and port the API server binds, and the URL components and users reach it at.
    api_host: str
    api_port: int
    api_url: str
    #: ``[core] hostname_callable`` (how task log URLs name a worker); None: Airflow's default.
    hostname_callable: str | None = None


def dag_bundle_config(layout: Layout) -> list[dict[str, object]]:
    """Return ``[dag_processor] dag_bundle_config_list``: each DAG folder, then the constructed one."""
    found: list[dict[str, object]] = [
        {"name": bundle.name, "classpath": LOCAL_DAG_BUNDLE, "kwargs": {"path": path}}
        for bundle, path in layout.bundles
    ]
    found.append(
        {
            "name": CONSTRUCTED_BUNDLE,
            "classpath": LOCAL_DAG_BUNDLE,
            "kwargs": {"path": layout.constructed},
        }
    )
    return found


def _instance_options(spec: InstanceSpec, layout: Layout) -> dict[str, dict[str, str]]:
    """Return the options every instance of ``spec`` runs with (the runtime's builder's job)."""
    executor = "CeleryExecutor" if spec.executor == "celery" else "LocalExecutor"
    first_folder = layout.bundles[0][1] if layout.bundles else layout.constructed
    options: dict[str, dict[str, str]] = {
        "core": {
            "executor": executor,
            "dags_folder": first_folder,
            "load_examples": "False",
            "auth_manager": SIMPLE_AUTH_MANAGER,
            "simple_auth_manager_users": "admin:admin",
            "simple_auth_manager_all_admins": "False",
            "simple_auth_manager_passwords_file": layout.passwords_file,
            # Workers reach the API server here; explicit so that no component guesses it.
            "execution_api_server_url": f"{layout.api_url}/execution/",
        },
        "api": {
            "host": layout.api_host,
            "port": str(layout.api_port),
            "base_url": spec.api.base_url or layout.api_url,
        },
        "dag_processor": {"dag_bundle_config_list": json.dumps(dag_bundle_config(layout))},
        "mlwf_constructors": {
            "instances_folder": layout.constructed,
            "bundle_name": CONSTRUCTED_BUNDLE,
        },
        "logging": {
            "base_log_folder": f"{layout.airflow_home}/logs",
            "file_task_handler_new_file_permissions": "0o600",
            "file_task_handler_new_folder_permissions": "0o700",
        },
    }
    if layout.hostname_callable is not None:
        options["core"]["hostname_callable"] = layout.hostname_callable
    if spec.metrics.enabled:
        options["metrics"] = {"statsd_on": "True", "statsd_custom_client_path": STATS_CLIENT}
    else:
        options["metrics"] = {"statsd_on": "False"}
    if spec.executor == "celery":
        options["celery"] = {"worker_concurrency": str(spec.celery.concurrency)}
        options["operators"] = {"default_queue": spec.celery.queues[0]}
    if spec.kerberos is not None:
        options["kerberos"] = {"principal": spec.kerberos.principal}
    return options


def airflow_options(spec: InstanceSpec, layout: Layout) -> dict[str, dict[str, str]]:
    """Return the instance's Airflow options (no secrets), the spec's ``airflow_config`` last.

    Raises RenderError if ``airflow_config`` sets a secret-bearing option: those come from
    Secrets, never from the spec's overrides.
    """
    options = _instance_options(spec, layout)
    owned = {(o.section, o.key) for o in SECRET_OPTIONS}
    for section, values in spec.airflow_config.items():
        for key, value in values.items():
            if (section.lower(), key.lower()) in owned:
                raise RenderError(
                    f"airflow_config.{section}.{key}: a secret-bearing option; it comes from the "
                    f"instance's Secrets (see the rendered instructions), not from the spec"
                )
            options.setdefault(section.lower(), {})[key.lower()] = value
    return options


def options_without(
    options: Mapping[str, Mapping[str, str]], drop: set[tuple[str, str]]
) -> dict[str, dict[str, str]]:
    """Return ``options`` without the ``(section, key)`` pairs in ``drop`` (and empty sections)."""
    found: dict[str, dict[str, str]] = {}
    for section, values in options.items():
        kept = {k: v for k, v in values.items() if (section, k) not in drop}
        if kept:
            found[section] = kept
    return found
