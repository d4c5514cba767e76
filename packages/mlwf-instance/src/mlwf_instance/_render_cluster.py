"""What the two cluster targets (Helm values, plain manifests) share.

The image (a Dockerfile FROM the official Airflow image with the mlwf packages installed), the
cluster :class:`~mlwf_instance._render_options.Layout`, ``secrets.example.yaml`` (every Secret
the team creates, with placeholders only) and ``krb5.conf``.
"""

from __future__ import annotations

import shlex
from importlib.metadata import version

from mlwf_instance._render_model import (
    AIRFLOW_HOME_IN_IMAGE,
    AIRFLOW_VERSION,
    API_PORT_IN_CLUSTER,
    BASE_IMAGE,
    BROKER,
    CONSTRUCTED_BUNDLE,
    DAGS_ROOT_IN_IMAGE,
    FILE_SECRETS,
    HTTP_KEYTAB,
    LDAP_CA,
    METADATA,
    METRICS_DIR_IN_IMAGE,
    SECRETS_DIR_IN_IMAGE,
    RenderedFile,
    SecretItem,
    dag_bundles,
    example_broker_url,
    example_database_url,
    labels,
    mlwf_requirements,
    needed_secrets,
    to_yaml_all,
)
from mlwf_instance._render_options import Layout
from mlwf_instance._spec import ComponentResources, InstanceSpec

#: Where the admin password Secret is mounted in the API server.
PASSWORDS_FILE_IN_IMAGE = f"{SECRETS_DIR_IN_IMAGE}/simple_auth_manager_passwords.json"
#: The LDAP service account's password, mounted from its Secret into the API server only.
LDAP_BIND_DIR_IN_IMAGE = f"{SECRETS_DIR_IN_IMAGE}-ldap"
LDAP_BIND_FILE_IN_IMAGE = f"{LDAP_BIND_DIR_IN_IMAGE}/password"
KEYTAB_PATH_IN_IMAGE = "/etc/airflow.keytab"
#: Where the API server mounts ``ldap.ca_certs_file`` and ``kerberos.http_keytab`` (Secrets).
LDAP_CA_DIR_IN_IMAGE = f"{SECRETS_DIR_IN_IMAGE}-ldap-ca"
HTTP_KEYTAB_DIR_IN_IMAGE = f"{SECRETS_DIR_IN_IMAGE}-http-keytab"


def api_server_file_secrets(spec: InstanceSpec) -> list[tuple[SecretItem, str]]:
    """Return the file Secrets only the API server mounts, each with its mount directory."""
    found = []
    for item, folder in ((LDAP_CA, LDAP_CA_DIR_IN_IMAGE), (HTTP_KEYTAB, HTTP_KEYTAB_DIR_IN_IMAGE)):
        if item in needed_secrets(spec):
            found.append((item, folder))
    return found


#: Task logs are fetched from the pod that ran the task by its IP (pods have no stable names).
HOSTNAME_CALLABLE = "airflow.utils.net.get_host_ip_address"


def image_name(spec: InstanceSpec) -> str:
    """Return the image reference the rendered files use (the team pushes it to its registry)."""
    return f"mlwf-{spec.name}"


def kubernetes_resources(resources: ComponentResources) -> dict[str, dict[str, str]]:
    """Return a component's ``resources`` (requests and limits) as Kubernetes writes them."""
    found: dict[str, dict[str, str]] = {}
    if resources.requests:
        found["requests"] = {str(k): v for k, v in resources.requests.items()}
    if resources.limits:
        found["limits"] = {str(k): v for k, v in resources.limits.items()}
    return found


def image_tag() -> str:
    """Return the image tag: the mlwf-instance and Airflow versions it holds."""
    return f"{version('mlwf-instance')}-airflow{AIRFLOW_VERSION}"


def api_service(spec: InstanceSpec) -> str:
    """Return the name of the API server's Service (the official chart's name for it, too)."""
    return f"{spec.name}-api-server"


def cluster_layout(spec: InstanceSpec) -> Layout:
    """Return where a cluster instance's files live: the DAG volume holds one folder per bundle."""
    bundles = tuple((b, f"{DAGS_ROOT_IN_IMAGE}/{b.name}") for b in dag_bundles(spec))
    return Layout(
        home=AIRFLOW_HOME_IN_IMAGE,
        airflow_home=AIRFLOW_HOME_IN_IMAGE,
        bundles=bundles,
        constructed=f"{DAGS_ROOT_IN_IMAGE}/{CONSTRUCTED_BUNDLE}",
        passwords_file=PASSWORDS_FILE_IN_IMAGE,
        metrics_dir=METRICS_DIR_IN_IMAGE,
        api_host="0.0.0.0",  # inside the pod; the Service is the instance's one entry point
        api_port=API_PORT_IN_CLUSTER,
        api_url=f"http://{api_service(spec)}:{API_PORT_IN_CLUSTER}",
        hostname_callable=HOSTNAME_CALLABLE,
        ldap_bind_password_file=LDAP_BIND_FILE_IN_IMAGE,
        ldap_ca_certs_file=f"{LDAP_CA_DIR_IN_IMAGE}/{LDAP_CA.key}",
        http_keytab_file=f"{HTTP_KEYTAB_DIR_IN_IMAGE}/{HTTP_KEYTAB.key}",
    )


def migrate_script(spec: InstanceSpec) -> str:
    """Return the shell command of the migration Job: ``airflow db migrate``, then the broker.

    With the database broker, kombu's tables and queue rows are created once here, before any
    worker starts (workers starting together race to create them: see mlwf_instance._broker).
    """
    if spec.executor != "celery" or spec.celery.broker != "database":
        return "exec airflow db migrate"
    queues = ", ".join(repr(q) for q in spec.celery.queues)
    prepare = (
        "import os; from mlwf_instance._broker import prepare_database_broker; "
        f"prepare_database_broker(os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'], [{queues}])"
    )
    return f'airflow db migrate && exec python -c "{prepare}"'


def dockerfile(spec: InstanceSpec) -> RenderedFile:
    """Return the Dockerfile of the instance's image: the official image plus the mlwf packages."""
    requirements = " \\\n    ".join(f'"{r}"' for r in mlwf_requirements(spec))
    text = f"""\
# The image of mlwf instance {spec.name!r}: the official Apache Airflow image plus the mlwf
# packages, pinned to the versions `mlwf instance render` ran with. Build and push it:
#   docker build -t REGISTRY/{image_name(spec)}:{image_tag()} .
#   docker push REGISTRY/{image_name(spec)}:{image_tag()}
# Packages from a private index: add `--index-url` (or a pip.conf) to the RUN line below.
FROM {BASE_IMAGE}

# Pinning apache-airflow with the rest keeps pip from up- or downgrading the image's Airflow.
RUN pip install --no-cache-dir \\
    "apache-airflow=={BASE_IMAGE.rsplit(":", 1)[1]}" \\
    {requirements}
"""
    if spec.database.kind == "mysql":
        # The scheduler's MariaDB query fix (mlwf_instance/_mariadb_compat/README.md) is a
        # sitecustomize: a .pth file puts its folder on every process's sys.path.
        text += f"""
# MariaDB: Airflow 3.3.2's scheduler sends a DELETE that MariaDB refuses; mlwf's fix loads
# as a sitecustomize from this folder (see mlwf_instance/_mariadb_compat/README.md).
RUN python -c {shlex.quote(_MARIADB_PTH)}
"""
    return RenderedFile("Dockerfile", text)


#: Writes ``mlwf-mariadb-compat.pth``, naming the installed ``_mariadb_compat`` folder, into the
#: site-packages folder pip installed mlwf_instance into (the image's user site).
_MARIADB_PTH = (
    "import pathlib, mlwf_instance; "
    "package = pathlib.Path(mlwf_instance.__file__).parent; "
    "(package.parent / 'mlwf-mariadb-compat.pth')"
    ".write_text(str(package / '_mariadb_compat') + chr(10))"
)


def _example(item: SecretItem, spec: InstanceSpec) -> str:
    if item is METADATA:
        return example_database_url(spec)
    if item is BROKER:
        return example_broker_url(spec)
    return item.example.format(name=spec.name)


def secrets_example(spec: InstanceSpec) -> RenderedFile:
    """Return ``secrets.example.yaml``: every Secret the instance reads, with placeholders only.

    Fill in copies of the placeholders and ``kubectl apply`` it (or create the Secrets with
    ``kubectl create secret``); never commit the filled-in file.
    """
    documents = []
    for item in needed_secrets(spec):
        if item in FILE_SECRETS:
            continue  # created from a file, see the comments at the top
        documents.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": item.name(spec), "labels": labels(spec)},
                "type": "Opaque",
                "stringData": {item.key: _example(item, spec)},
            }
        )
    lines = [
        f"# The Secrets mlwf instance {spec.name!r} reads. Placeholders only: fill in a copy,",
        "# `kubectl apply -f` it, and never commit the filled-in copy.",
    ]
    for item in needed_secrets(spec):
        lines.append(f"#   {item.name(spec)} [{item.key}]: {item.holds}")
    for item in needed_secrets(spec):
        if item in FILE_SECRETS:
            lines.append(f"# {item.name(spec)} comes from a file: {_example(item, spec)}")
    body = to_yaml_all(documents)
    return RenderedFile("secrets.example.yaml", "\n".join(lines) + "\n---\n" + body)


def krb5_conf(spec: InstanceSpec) -> str:
    """Return a ``krb5.conf`` for the principal's realm: KDCs found in DNS (SRV records)."""
    assert spec.kerberos is not None
    realm = spec.kerberos.principal.rsplit("@", 1)[1]
    return (
        "# Rendered by mlwf: the realm of the instance's principal; KDCs are looked up in DNS.\n"
        "# Replace with your site's krb5.conf if its KDCs have no SRV records.\n"
        "[libdefaults]\n"
        f"  default_realm = {realm}\n"
        "  dns_lookup_kdc = true\n"
        "  dns_lookup_realm = false\n"
        "  rdns = false\n"
        "  forwardable = true\n"
    )


def secret_instructions(spec: InstanceSpec) -> list[str]:
    """Return Markdown lines naming each Secret to create, its key and what it holds."""
    lines = ["| Secret | key | holds |", "|---|---|---|"]
    for item in needed_secrets(spec):
        lines.append(f"| `{item.name(spec)}` | `{item.key}` | {item.holds} |")
    return lines
