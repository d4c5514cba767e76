"""``--target helm``: values for the official Apache Airflow Helm chart, plus the image and Secrets.

Written for chart :data:`~mlwf_instance._render_model.HELM_CHART_VERSION` (``helm install NAME
apache-airflow/airflow --version 1.22.0 -f values.yaml``, release name = the spec's name: the
chart names the Kerberos keytab Secret and the API server Service after the release). The values
never hold a secret: the metadata database, broker, Fernet key, API and JWT secrets are Kubernetes
Secrets the team creates (``secrets.example.yaml``), which the chart reads by name.

DAG files reach the pods on the chart's DAG volume (``dags.persistence``, ReadWriteMany): one
folder per bundle, filled by the team (CI job, ``kubectl cp``); gitSync needs a repository the
spec does not name (see docs/mlwf-instance/kubernetes.md).
"""

from __future__ import annotations

from typing import Any

from mlwf_instance._render_cluster import (
    KEYTAB_PATH_IN_IMAGE,
    LDAP_BIND_DIR_IN_IMAGE,
    PASSWORDS_FILE_IN_IMAGE,
    api_server_file_secrets,
    cluster_layout,
    dockerfile,
    image_name,
    image_tag,
    krb5_conf,
    kubernetes_resources,
    migrate_script,
    secret_instructions,
    secrets_example,
)
from mlwf_instance._render_model import (
    ADMIN_PASSWORD,
    AIRFLOW_VERSION,
    API_SECRET,
    BROKER,
    DAGS_ROOT_IN_IMAGE,
    FERNET,
    HELM_CHART_VERSION,
    JWT_SECRET,
    LDAP_BIND,
    METADATA,
    METRICS_DIR_IN_IMAGE,
    SECRETS_DIR_IN_IMAGE,
    RenderedFile,
    needed_secrets,
    service_account,
    to_yaml,
)
from mlwf_instance._render_options import (
    airflow_options,
    dag_bundle_config,
    environment,
    options_without,
)
from mlwf_instance._spec import InstanceSpec

#: The chart's component sections and the spec's resources field of each.
_COMPONENTS = {
    "apiServer": "api_server",
    "scheduler": "scheduler",
    "dagProcessor": "dag_processor",
    "triggerer": "triggerer",
}
#: Sections whose pods run with the spec's service account when it names one.
_ACCOUNT_SECTIONS = ("apiServer", "scheduler", "dagProcessor", "triggerer", "migrateDatabaseJob")
METRICS_VOLUME = "mlwf-metrics"


def _metrics_sidecar(image: str, port: int) -> dict[str, Any]:
    """Return the container serving one pod's metrics files to Prometheus (no auth: pod network)."""
    return {
        "name": "mlwf-metrics",
        "image": image,
        "command": ["mlwf-stats-bridge", "serve", "--host", "0.0.0.0", "--port", str(port)],
        "env": [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": METRICS_DIR_IN_IMAGE}],
        "ports": [{"name": "metrics", "containerPort": port}],
        "volumeMounts": [{"name": METRICS_VOLUME, "mountPath": METRICS_DIR_IN_IMAGE}],
    }


def helm_values(spec: InstanceSpec) -> dict[str, Any]:
    """Return the chart values of instance ``spec`` (a plain dict, ready for YAML)."""
    layout = cluster_layout(spec)
    account = service_account(spec)
    # The chart sets these itself: dag_bundle_config_list from dagProcessor.dagBundleConfigList,
    # the executor from `executor` (it refuses config.core.executor), the Kerberos options from
    # `kerberos`.
    config = options_without(
        airflow_options(spec, layout),
        {
            ("dag_processor", "dag_bundle_config_list"),
            ("core", "executor"),
            ("kerberos", "principal"),
        },
    )
    values: dict[str, Any] = {
        "defaultAirflowRepository": image_name(spec),
        "defaultAirflowTag": image_tag(),
        "airflowVersion": AIRFLOW_VERSION,
        "executor": "CeleryExecutor" if spec.executor == "celery" else "LocalExecutor",
        "fernetKeySecretName": FERNET.name(spec),
        "apiSecretKeySecretName": API_SECRET.name(spec),
        "jwtSecretName": JWT_SECRET.name(spec),
        "data": {"metadataSecretName": METADATA.name(spec)},
        # An external database: no bundled PostgreSQL, no chart-made Redis, no StatsD exporter
        # (mlwf-stats-bridge is the StatsD client; it sends nothing over UDP).
        "postgresql": {"enabled": False},
        "redis": {"enabled": False},
        "statsd": {"enabled": False},
        # The chart's user job runs FAB's `airflow users create`; SimpleAuthManager reads the
        # admin password from the mounted Secret instead.
        "createUserJob": {"enabled": False},
        "config": config,
        # AIRFLOW_HOME is the chart's; the rest as on every other target.
        "env": [
            {"name": name, "value": value}
            for name, value in environment(spec, layout).items()
            if name != "AIRFLOW_HOME"
        ],
        "volumes": [{"name": METRICS_VOLUME, "emptyDir": {}}],
        "volumeMounts": [{"name": METRICS_VOLUME, "mountPath": METRICS_DIR_IN_IMAGE}],
        "dags": {
            "persistence": {"enabled": True, "accessMode": "ReadWriteMany", "size": "1Gi"},
        },
        "dagProcessor": {"enabled": True, "dagBundleConfigList": dag_bundle_config(layout)},
        "apiServer": {
            "extraVolumes": [
                {
                    "name": "admin-password",
                    "secret": {
                        "secretName": ADMIN_PASSWORD.name(spec),
                        "items": [
                            {
                                "key": ADMIN_PASSWORD.key,
                                "path": PASSWORDS_FILE_IN_IMAGE.rsplit("/", 1)[1],
                            }
                        ],
                    },
                },
                # The chart mounts the DAG volume everywhere but in the API server, which writes
                # DAG constructor instances into the mlwf-constructed bundle and imports the
                # constructors from the DAG folders.
                {"name": "dags", "persistentVolumeClaim": {"claimName": f"{spec.name}-dags"}},
            ],
            "extraVolumeMounts": [
                {"name": "admin-password", "mountPath": SECRETS_DIR_IN_IMAGE, "readOnly": True},
                {"name": "dags", "mountPath": DAGS_ROOT_IN_IMAGE},
            ],
        },
        "scheduler": {},
        "triggerer": {},
        "migrateDatabaseJob": {"args": ["bash", "-c", migrate_script(spec)]},
    }
    for section, field in _COMPONENTS.items():
        found = kubernetes_resources(getattr(spec.resources, field))
        if found:
            values[section]["resources"] = found
    if spec.executor == "celery":
        values["data"]["brokerUrlSecretName"] = BROKER.name(spec)
        celery: dict[str, Any] = {
            "replicas": spec.celery.workers,
            "queue": ",".join(spec.celery.queues),
        }
        worker_resources = kubernetes_resources(spec.resources.worker)
        if worker_resources:
            celery["resources"] = worker_resources
        if account is not None:
            celery["serviceAccount"] = {"create": False, "name": account}
        if spec.kerberos is not None:
            celery["kerberosSidecar"] = {"enabled": True}
            celery["kerberosInitContainer"] = {"enabled": True}
        values["workers"] = {"celery": celery}
    if account is not None:
        for section in _ACCOUNT_SECTIONS:
            values[section]["serviceAccount"] = {"create": False, "name": account}
    if spec.kerberos is not None:
        values["kerberos"] = {
            "enabled": True,
            "principal": spec.kerberos.principal,
            "keytabPath": KEYTAB_PATH_IN_IMAGE,
            "config": krb5_conf(spec),
        }
    if spec.metrics.enabled and spec.metrics.port is not None:
        sidecar = _metrics_sidecar(f"{image_name(spec)}:{image_tag()}", spec.metrics.port)
        for section in ("apiServer", "scheduler", "dagProcessor", "triggerer"):
            values[section]["extraContainers"] = [sidecar]
        if spec.executor == "celery":
            values["workers"]["celery"]["extraContainers"] = [sidecar]
    if spec.ldap is not None:
        # mlwf-auth: users log in as themselves; no generated admin password to mount.
        api_server = values["apiServer"]
        api_server["extraVolumes"] = [
            v for v in api_server["extraVolumes"] if v["name"] != "admin-password"
        ]
        api_server["extraVolumeMounts"] = [
            m for m in api_server["extraVolumeMounts"] if m["name"] != "admin-password"
        ]
        if LDAP_BIND in needed_secrets(spec):
            # A file read by ldap_bind_password_cmd, in the API server only (no other pod,
            # hence no task, sees the directory's service password).
            api_server["extraVolumes"].append(
                {
                    "name": "ldap-bind-password",
                    "secret": {
                        "secretName": LDAP_BIND.name(spec),
                        "items": [{"key": LDAP_BIND.key, "path": "password"}],
                        "defaultMode": 0o440,
                    },
                }
            )
            api_server["extraVolumeMounts"].append(
                {
                    "name": "ldap-bind-password",
                    "mountPath": LDAP_BIND_DIR_IN_IMAGE,
                    "readOnly": True,
                }
            )
        for item, folder in api_server_file_secrets(spec):
            # Only the API server checks logins: no other pod, hence no task, sees these files.
            api_server["extraVolumes"].append(
                {
                    "name": item.suffix,
                    "secret": {
                        "secretName": item.name(spec),
                        "items": [{"key": item.key, "path": item.key}],
                        "defaultMode": 0o440,
                    },
                }
            )
            api_server["extraVolumeMounts"].append(
                {"name": item.suffix, "mountPath": folder, "readOnly": True}
            )
    for section in ("scheduler", "triggerer", "migrateDatabaseJob"):
        if not values[section]:
            del values[section]
    return values


def _readme(spec: InstanceSpec) -> RenderedFile:
    workers = (
        f"`{spec.celery.workers}` Celery workers (`workers.celery.replicas`), concurrency "
        f"{spec.celery.concurrency}, queues {', '.join(spec.celery.queues)}"
        if spec.executor == "celery"
        else "LocalExecutor: tasks run in the scheduler pod"
    )
    lines = [
        f"# mlwf instance `{spec.name}` on the official Apache Airflow Helm chart {HELM_CHART_VERSION}",
        "",
        f"Airflow {AIRFLOW_VERSION}, {workers}.",
        "",
        "1. Build and push the image (`Dockerfile`), then set `defaultAirflowRepository` and",
        "   `defaultAirflowTag` in `values.yaml` to it.",
        "2. Create the Secrets the values name (`secrets.example.yaml` has placeholders):",
        "",
        *secret_instructions(spec),
        "",
        "3. Install (the release name must be the instance name):",
        "",
        "   ```",
        "   helm repo add apache-airflow https://airflow.apache.org",
        f"   helm install {spec.name} apache-airflow/airflow --version {HELM_CHART_VERSION} -f values.yaml",
        "   ```",
        "",
        "4. Copy each DAG folder into its bundle folder on the DAG volume "
        "(`/opt/airflow/dags/<bundle>`):",
        "",
        *[f"   - `{bundle.source}` → `{path}`" for bundle, path in cluster_layout(spec).bundles],
        "",
        "See docs/mlwf-instance/kubernetes.md for scaling workers and switching brokers.",
    ]
    return RenderedFile("README.md", "\n".join(lines) + "\n")


def render_helm(spec: InstanceSpec) -> list[RenderedFile]:
    """Return the files of ``--target helm``: values.yaml, Dockerfile, secrets.example.yaml, README.md."""
    header = (
        f"# Values of mlwf instance {spec.name!r} for the official Apache Airflow Helm chart "
        f"{HELM_CHART_VERSION}\n"
        f"# (helm install {spec.name} apache-airflow/airflow --version {HELM_CHART_VERSION} -f values.yaml).\n"
        "# Rendered by `mlwf instance render`; holds no secret: the Secrets it names are listed in\n"
        "# secrets.example.yaml.\n"
    )
    body = to_yaml(helm_values(spec))
    return [
        RenderedFile("values.yaml", header + body),
        dockerfile(spec),
        secrets_example(spec),
        _readme(spec),
    ]
