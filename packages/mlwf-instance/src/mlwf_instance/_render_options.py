"""The Airflow options and environment of a spec's instance, without its secrets, for any target.

The options are the runtime's (what ``mlwf instance up`` runs with): :class:`InstanceConfig`'s
own options, the spec's executor and Celery options (:func:`spec_options`) and the defaults
installed packages contribute (entry point group ``mlwf.instance.defaults``), built by the same
code. A render target only moves them: :class:`Layout` says where its home, DAG bundles, logs
and metrics live and how its components reach the API server, and the options that depend on
that are set from it. Secret-bearing options are never returned: each target supplies those of
:data:`SECRET_OPTIONS` its own way (Kubernetes Secrets as environment variables, local files
through Airflow's ``*_cmd`` options); the result backend and the async database URL are left
to Airflow, which derives both from ``[database] sql_alchemy_conn``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from mlwf_instance._auth import auth_options
from mlwf_instance._database import database_urls
from mlwf_instance._defaults import (
    DEFAULTS_GROUP,
    ContributedDefaults,
    DefaultsContext,
    collect_defaults,
)
from mlwf_instance._home import InstanceConfig, InstanceHome
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
    needed_secrets,
)
from mlwf_instance._spec import InstanceSpec
from mlwf_instance._topology import spec_options

LOCAL_DAG_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


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
#: Secret-bearing options the runtime sets that a render leaves to Airflow's own derivation
#: from ``sql_alchemy_conn`` (``db+`` result backend, asyncpg/aiomysql URL).
DERIVED_OPTIONS = frozenset({("database", "sql_alchemy_conn_async"), ("celery", "result_backend")})


def secret_options(spec: InstanceSpec) -> list[SecretOption]:
    """Return the secret-bearing options instance ``spec`` sets."""
    needed = needed_secrets(spec)
    return [o for o in SECRET_OPTIONS if o.secret in needed]


@dataclass(frozen=True)
class Layout:
    """Where one target puts an instance's files and how its components reach each other."""

    #: The instance home (what ``mlwf instance up`` calls the home; a path in the image on a cluster).
    home: str
    #: AIRFLOW_HOME of every component.
    airflow_home: str
    #: ``(bundle, folder)`` of each DAG folder of the spec, in the target's file system.
    bundles: tuple[tuple[Bundle, str], ...]
    #: Folder of the ``mlwf-constructed`` bundle (generated files of DAG constructor instances).
    constructed: str
    #: SimpleAuthManager's passwords file (a mounted Secret on a cluster).
    passwords_file: str
    #: PROMETHEUS_MULTIPROC_DIR of every component (mlwf-stats-bridge's metric files).
    metrics_dir: str
    #: Address and port the API server binds, and the URL components and users reach it at.
    api_host: str
    api_port: int
    api_url: str
    #: ``[core] hostname_callable`` (how task log URLs name a worker).
    hostname_callable: str
    #: The file ``[mlwf_auth] ldap_bind_password_cmd`` reads (a mounted Secret on a cluster).
    ldap_bind_password_file: str = ""
    #: Whether the spec's files of this machine (CA certificates, HTTP keytab) exist there.
    local_files: bool = False
    #: Elsewhere, the files ``ldap.ca_certs_file`` and ``kerberos.http_keytab`` are mounted as.
    ldap_ca_certs_file: str = ""
    http_keytab_file: str = ""


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


@cache
def _default_points() -> tuple[EntryPoint, ...]:
    # Scanning the installed distributions costs ~0.1-0.4 s; what is installed does not change
    # while a render runs, and every component of a manifest asks.
    return tuple(entry_points(group=DEFAULTS_GROUP))


def contributed_defaults(spec: InstanceSpec, layout: Layout) -> ContributedDefaults:
    """Return what installed packages contribute to the instance (``mlwf.instance.defaults``)."""
    return collect_defaults(
        DefaultsContext(
            name=spec.name,
            home=Path(layout.home),
            airflow_home=Path(layout.airflow_home),
            constructed_folder=Path(layout.constructed),
            constructed_bundle=CONSTRUCTED_BUNDLE,
            metrics_dir=Path(layout.metrics_dir),
            metrics_enabled=spec.metrics.enabled,
            executor=spec.executor,
            database_kind=spec.database.kind,
            team=spec.database.kind != "sqlite",
        ),
        list(_default_points()),
    )


def _runtime_options(spec: InstanceSpec, layout: Layout) -> dict[str, dict[str, str]]:
    """Return the runtime's options for ``spec`` (secrets left empty), its home at ``layout``."""
    # No password: render never reads a secret; the URLs below are dropped as secret-bearing.
    database = database_urls(
        spec.database.url, password=None, sqlite_file=Path(layout.airflow_home) / "airflow.db"
    )
    options = spec_options(spec, database, None)
    auth = auth_options(
        spec,
        bind_password_file=layout.ldap_bind_password_file,
        files=layout.local_files,
        ca_certs_file=layout.ldap_ca_certs_file,
        http_keytab_file=layout.http_keytab_file,
    )
    for section, values in auth.items():
        options.setdefault(section, {}).update(values)
    if spec.executor == "local":
        options["core"]["parallelism"] = "4"  # as `mlwf instance up`: LocalExecutor pre-forks
    contributed = contributed_defaults(spec, layout)
    folders = [(bundle.name, Path(path)) for bundle, path in layout.bundles]
    config = InstanceConfig(
        home=InstanceHome(Path(layout.home)),
        dags_folder=folders[0][1],
        dags_bundle=folders[0][0],
        extra_dag_folders=tuple(folders[1:]),
        port=layout.api_port,
        host=layout.api_host,
        base_url=spec.api.base_url,
        database=None if database.kind == "sqlite" else database,
        spec_options=options,
        contributed_options=contributed.airflow_config,
        contributed_env=contributed.environment,
        extra_config=spec.airflow_config,
    )
    return config.airflow_options({"api_secret_key": "", "jwt_secret": "", "fernet_key": ""})


def airflow_options(spec: InstanceSpec, layout: Layout) -> dict[str, dict[str, str]]:
    """Return the instance's Airflow options for ``layout``, without any secret-bearing option.

    Raises RenderError if ``airflow_config`` sets a secret-bearing option (the spec refuses
    those when it is parsed; a spec built in code is checked here too).
    """
    secret = {(o.section, o.key) for o in SECRET_OPTIONS} | DERIVED_OPTIONS
    for section, values in spec.airflow_config.items():
        for key in values:
            if (section.lower(), key.lower()) in secret:
                raise RenderError(
                    f"airflow_config.{section}.{key}: a secret-bearing option; it comes from the "
                    f"instance's Secrets (see the rendered instructions), not from the spec"
                )
    options = options_without(_runtime_options(spec, layout), secret)
    core = options.setdefault("core", {})
    core["simple_auth_manager_passwords_file"] = layout.passwords_file
    core["execution_api_server_url"] = f"{layout.api_url}/execution/"
    core["hostname_callable"] = layout.hostname_callable
    core["dags_folder"] = layout.bundles[0][1]
    options["api"].update(
        {
            "host": layout.api_host,
            "port": str(layout.api_port),
            "base_url": spec.api.base_url or layout.api_url,
        }
    )
    options["logging"]["base_log_folder"] = f"{layout.airflow_home}/logs"
    options["dag_processor"]["dag_bundle_config_list"] = json.dumps(dag_bundle_config(layout))
    if spec.kerberos is not None:
        options.setdefault("kerberos", {})["principal"] = spec.kerberos.principal
    return options


def environment(spec: InstanceSpec, layout: Layout) -> dict[str, str]:
    """Return the environment every component gets besides the options (no secrets)."""
    env = {
        "AIRFLOW_HOME": layout.airflow_home,
        # Generated constructor files import the constructors defined in the DAG folders.
        "PYTHONPATH": ":".join(path for _, path in layout.bundles),
    }
    env.update(contributed_defaults(spec, layout).environment)
    return env


def options_without(
    options: Mapping[str, Mapping[str, str]],
    drop: set[tuple[str, str]] | frozenset[tuple[str, str]],
) -> dict[str, dict[str, str]]:
    """Return ``options`` without the ``(section, key)`` pairs in ``drop`` (and empty sections)."""
    found: dict[str, dict[str, str]] = {}
    for section, values in options.items():
        kept = {k: v for k, v in values.items() if (section, k) not in drop}
        if kept:
            found[section] = kept
    return found
