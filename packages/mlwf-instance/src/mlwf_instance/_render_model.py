"""What every render target shares: rendered files, the instance's Secrets, DAG bundles, names.

A rendered target is a list of :class:`RenderedFile`; nothing here touches the disk. Secrets are
never rendered: each target *references* them (Kubernetes Secrets by name and key, local files by
path), and :data:`SECRETS` says which ones an instance needs and what each holds, so that the
rendered instructions and ``secrets.example.yaml`` can tell the team what to create.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import distributions
from typing import Any

import yaml

from mlwf_instance._errors import RenderError as RenderError
from mlwf_instance._spec import InstanceSpec
from mlwf_instance._topology import dag_bundle_names

#: The Airflow release the rendered image and configuration target (the version this workspace
#: is tested with; the official image ``apache/airflow:<this>`` is the base of the rendered image).
AIRFLOW_VERSION = "3.3.2"
#: The official Apache Airflow Helm chart release the Helm values are written for (and validated
#: against: tests/data/helm-chart-1.22.0/values.schema.json). The newest release when written.
HELM_CHART_VERSION = "1.22.0"
#: The official image the rendered Dockerfile builds FROM.
BASE_IMAGE = f"apache/airflow:{AIRFLOW_VERSION}"

#: Where things live inside the official image (its AIRFLOW_HOME and the chart's mount points).
AIRFLOW_HOME_IN_IMAGE = "/opt/airflow"
DAGS_ROOT_IN_IMAGE = f"{AIRFLOW_HOME_IN_IMAGE}/dags"
SECRETS_DIR_IN_IMAGE = f"{AIRFLOW_HOME_IN_IMAGE}/secrets"
METRICS_DIR_IN_IMAGE = f"{AIRFLOW_HOME_IN_IMAGE}/metrics"
API_PORT_IN_CLUSTER = 8080
#: Name of the DAG bundle of generated DAG constructor instances (same as ``mlwf up``).
CONSTRUCTED_BUNDLE = "mlwf-constructed"

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


#: Plain scalars that some YAML reader (1.1 or 1.2: Helm, kubectl, PyYAML) takes for a non-string.
_AMBIGUOUS = re.compile(
    r"^([-+]?(0o|0x|0b)?[0-9a-fA-F_.:]+|[-+]?\.?(inf|Inf|INF|nan|NaN|NAN)"
    r"|(?i:y|n|yes|no|on|off|true|false|null|~))$"
)


class _Dumper(yaml.SafeDumper):
    """Block YAML without anchors, multi-line strings as ``|`` blocks, look-alikes quoted."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if _AMBIGUOUS.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def to_yaml(data: Any) -> str:
    """Return ``data`` as block YAML that every YAML 1.1 and 1.2 reader reads back the same."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def to_yaml_all(documents: list[Any]) -> str:
    """Return ``documents`` as a multi-document YAML stream (see :func:`to_yaml`)."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


@dataclass(frozen=True)
class RenderedFile:
    """One file of a rendered target: its path relative to ``--out``, content and mode."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class SecretItem:
    """One secret an instance needs: where it lives in Kubernetes and what it holds.

    ``suffix`` and ``key`` name the Kubernetes Secret ``<instance>-<suffix>`` and its data key;
    the names follow the official Helm chart's conventions (key ``connection`` for URLs, the
    ``<release>-kerberos-keytab`` Secret with key ``kerberos.keytab``). ``local`` is the file
    name under ``<home>/secrets/`` that the local target reads it from.
    """

    suffix: str
    key: str
    local: str
    holds: str
    example: str

    def name(self, spec: InstanceSpec) -> str:
        """Return the Kubernetes Secret's name for instance ``spec``."""
        return f"{spec.name}-{self.suffix}"


METADATA = SecretItem(
    "airflow-metadata",
    "connection",
    "sql_alchemy_conn",
    "the metadata database's SQLAlchemy URL, password included",
    "{url}",
)
BROKER = SecretItem(
    "airflow-broker",
    "connection",
    "broker_url",
    "the Celery broker URL, password included",
    "{broker}",
)
FERNET = SecretItem(
    "airflow-fernet-key",
    "fernet-key",
    "fernet_key",
    "the Fernet key encrypting connections and variables (keep it: losing it loses them)",
    "<output of: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'>",
)
API_SECRET = SecretItem(
    "airflow-api-secret-key",
    "api-secret-key",
    "api_secret_key",
    "the API server's session signing key, the same on every replica",
    "<output of: openssl rand -hex 32>",
)
JWT_SECRET = SecretItem(
    "airflow-jwt-secret",
    "jwt-secret",
    "jwt_secret",
    "the key signing the JWTs of users and of task workers, the same on every component",
    "<output of: openssl rand -hex 48>",
)
ADMIN_PASSWORD = SecretItem(
    "airflow-admin-password",
    "simple_auth_manager_passwords.json",
    "simple_auth_manager_passwords.json",
    "the admin password of Airflow's SimpleAuthManager, as JSON",
    '{{"admin": "<a long random password>"}}',
)
LDAP_BIND = SecretItem(
    "ldap-bind-password",
    "password",
    "ldap_bind_password",
    "the password of the LDAP service account (ldap.bind_dn)",
    "<the password>",
)
KEYTAB = SecretItem(
    "kerberos-keytab",
    "kerberos.keytab",
    "kerberos.keytab",
    "the Kerberos keytab of the instance's principal (binary)",
    "<create with: kubectl create secret generic {name}-kerberos-keytab --from-file=kerberos.keytab=PATH>",
)


LDAP_CA = SecretItem(
    "ldap-ca-certs",
    "ca.crt",
    "ldap_ca_certs.pem",
    "the CA certificates that sign the LDAP server's certificate (PEM; ldap.ca_certs_file)",
    "<create with: kubectl create secret generic {name}-ldap-ca-certs --from-file=ca.crt=PATH>",
)
HTTP_KEYTAB = SecretItem(
    "http-keytab",
    "http.keytab",
    "http.keytab",
    "the keytab of the API server's HTTP/<host> principal, for single sign-on (binary)",
    "<create with: kubectl create secret generic {name}-http-keytab --from-file=http.keytab=PATH>",
)
#: Secrets created from a file (``kubectl create secret … --from-file``), not from a value.
FILE_SECRETS = (KEYTAB, LDAP_CA, HTTP_KEYTAB)


def needed_secrets(spec: InstanceSpec) -> list[SecretItem]:
    """Return the secrets instance ``spec`` needs on a cluster, in a stable order."""
    found = [METADATA]
    if spec.executor == "celery":
        found.append(BROKER)
    found += [FERNET, API_SECRET, JWT_SECRET]
    if spec.ldap is None:
        found.append(ADMIN_PASSWORD)  # SimpleAuthManager; with ldap users log in as themselves
    elif spec.ldap.bind_password is not None:
        found.append(LDAP_BIND)
    if spec.ldap is not None and spec.ldap.ca_certs_file is not None:
        found.append(LDAP_CA)
    if spec.kerberos is not None:
        found.append(KEYTAB)
        if spec.kerberos.http_keytab is not None:
            found.append(HTTP_KEYTAB)
    return found


def database_url(spec: InstanceSpec) -> str:
    """Return the metadata database URL with the driver mlwf uses, without any password.

    ``postgresql://`` → ``postgresql+psycopg://`` (psycopg 3), ``mysql://`` and MariaDB →
    ``mysql+pymysql://``; Airflow derives the async URL (asyncpg, aiomysql) from it.
    """
    url = spec.database.url
    kind = spec.database.kind
    if kind == "sqlite":
        raise RenderError(
            'database.url: "sqlite" cannot run on a cluster; give a postgresql:// or mysql:// URL'
        )
    rest = url.split("://", 1)[1]
    if "@" in rest.split("/", 1)[0]:
        userinfo, host = rest.split("@", 1)
        rest = f"{userinfo.split(':', 1)[0]}@{host}"
    driver = "postgresql+psycopg" if kind == "postgresql" else "mysql+pymysql"
    return f"{driver}://{rest}"


def example_database_url(spec: InstanceSpec) -> str:
    """Return the metadata URL with a placeholder password, for instructions and examples."""
    url = database_url(spec)
    scheme, rest = url.split("://", 1)
    if "@" in rest.split("/", 1)[0]:
        user, host = rest.split("@", 1)
        return f"{scheme}://{user}:<password>@{host}"
    return f"{scheme}://<user>:<password>@{rest}"


def example_broker_url(spec: InstanceSpec) -> str:
    """Return the Celery broker URL with a placeholder password (``sqla+`` for the database)."""
    broker = spec.celery.broker
    if broker == "database":
        return "sqla+" + example_database_url(spec)
    scheme, rest = broker.split("://", 1)
    hostpart = rest.split("/", 1)[0]
    if "@" in hostpart:
        user = hostpart.split("@", 1)[0].split(":", 1)[0]
        rest = rest.replace(hostpart, f"{user}:<password>@{hostpart.split('@', 1)[1]}", 1)
    return f"{scheme}://{rest}"


def kubernetes_name(value: str, field: str) -> str:
    """Return ``value`` if it is a Kubernetes object name; raise RenderError naming ``field``."""
    if len(value) > 253 or not _K8S_NAME.match(value):
        raise RenderError(
            f"{field}: {value!r} is not a Kubernetes name (lowercase letters, digits, '-' and "
            f"'.', starting and ending with a letter or digit)"
        )
    return value


def service_account(spec: InstanceSpec) -> str | None:
    """Return the spec's service account as a Kubernetes name, or None when it names none."""
    if spec.service_account is None:
        return None
    return kubernetes_name(spec.service_account, "service_account")


@dataclass(frozen=True)
class Bundle:
    """One DAG bundle: its name and the folder it was rendered from."""

    name: str
    source: str


def dag_bundles(spec: InstanceSpec) -> list[Bundle]:
    """Return the spec's DAG folders as bundles, named as ``mlwf instance up`` names them."""
    return [
        Bundle(name=name, source=str(folder.path))
        for name, folder in zip(dag_bundle_names(spec), spec.dag_folders, strict=True)
    ]


def labels(spec: InstanceSpec, component: str | None = None) -> dict[str, str]:
    """Return the recommended Kubernetes labels of an object of instance ``spec``."""
    found = {
        "app.kubernetes.io/name": "airflow",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/part-of": "mlwf",
        "app.kubernetes.io/managed-by": "mlwf-instance",
    }
    if component is not None:
        found["app.kubernetes.io/component"] = component
    return found


@cache
def _installed_mlwf() -> tuple[tuple[str, str], ...]:
    """Return ``(name, version)`` of every installed mlwf distribution (not the test support)."""
    found = {}
    for dist in distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("mlwf-") and name != "mlwf-testsupport":
            found[name] = dist.version
    return tuple(sorted(found.items()))


def mlwf_requirements(spec: InstanceSpec) -> list[str]:
    """Return the pip requirements of the image: every installed mlwf package, pinned.

    The image gets exactly the mlwf versions this render ran with, with the extras the spec
    needs (database driver, Celery, Redis).
    """
    extras = ["postgres" if spec.database.kind == "postgresql" else "mysql"]
    if spec.executor == "celery":
        extras.append("celery")
        if spec.celery.broker.startswith("redis"):
            extras.append("redis")
    requirements = []
    for name, pinned in _installed_mlwf():
        extra = f"[{','.join(extras)}]" if name == "mlwf-instance" else ""
        requirements.append(f"{name}{extra}=={pinned}")
    return requirements
