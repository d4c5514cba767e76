"""``--target kubernetes``: plain manifests of an instance, one object per file under ``manifests/``.

ServiceAccount, ConfigMap (``airflow.cfg``, ``krb5.conf``), a ReadWriteMany volume for the DAG
bundles, Deployments of the api-server, scheduler, dag-processor and triggerer, a StatefulSet of
the Celery workers with its headless Service, the API server's Service and a Job running
``airflow db migrate``. Secrets are referenced by name only (``secrets.example.yaml`` lists them);
no manifest holds a secret. Every pod waits for the migrations before it starts.
"""

from __future__ import annotations

import configparser
import io
from typing import Any

from mlwf_instance._render_cluster import (
    KEYTAB_PATH_IN_IMAGE,
    LDAP_BIND_DIR_IN_IMAGE,
    PASSWORDS_FILE_IN_IMAGE,
    api_server_file_secrets,
    api_service,
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
    AIRFLOW_HOME_IN_IMAGE,
    API_PORT_IN_CLUSTER,
    DAGS_ROOT_IN_IMAGE,
    KEYTAB,
    LDAP_BIND,
    METRICS_DIR_IN_IMAGE,
    SECRETS_DIR_IN_IMAGE,
    RenderedFile,
    labels,
    needed_secrets,
    service_account,
    to_yaml,
)
from mlwf_instance._render_options import airflow_options, environment, secret_options
from mlwf_instance._spec import ComponentResources, InstanceSpec

WORKER_LOG_PORT = 8793
CCACHE_DIR = "/var/kerberos-ccache"
_CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def _names(spec: InstanceSpec) -> dict[str, str]:
    base = f"{spec.name}-airflow"
    return {
        "config": f"{base}-config",
        "dags": f"{base}-dags",
        "account": service_account(spec) or base,
        "migrate": f"{base}-migrate",
        "worker": f"{spec.name}-worker",
    }


def airflow_cfg(spec: InstanceSpec) -> str:
    """Return the ``airflow.cfg`` of the cluster instance (no secrets: they come as env vars)."""
    parser = configparser.ConfigParser(interpolation=None)
    for section, values in sorted(airflow_options(spec, cluster_layout(spec)).items()):
        # Airflow reads airflow.cfg with %-interpolation: a literal % is written %%.
        parser[section] = {k: v.replace("%", "%%") for k, v in sorted(values.items())}
    buffer = io.StringIO()
    buffer.write(f"# airflow.cfg of mlwf instance {spec.name!r}, rendered by mlwf; no secrets.\n")
    parser.write(buffer)
    return buffer.getvalue()


def _env(spec: InstanceSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": name, "value": value}
        for name, value in environment(spec, cluster_layout(spec)).items()
    ]
    for option in secret_options(spec):
        env.append(
            {
                "name": option.env,
                "valueFrom": {
                    "secretKeyRef": {"name": option.secret.name(spec), "key": option.secret.key}
                },
            }
        )
    if spec.kerberos is not None:
        env.append({"name": "KRB5CCNAME", "value": f"{CCACHE_DIR}/cache"})
    return env


def _mounts(spec: InstanceSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {
            "name": "config",
            "mountPath": f"{AIRFLOW_HOME_IN_IMAGE}/airflow.cfg",
            "subPath": "airflow.cfg",
            "readOnly": True,
        },
        {"name": "dags", "mountPath": DAGS_ROOT_IN_IMAGE},
        {"name": "logs", "mountPath": f"{AIRFLOW_HOME_IN_IMAGE}/logs"},
        {"name": "metrics", "mountPath": METRICS_DIR_IN_IMAGE},
    ]
    if spec.kerberos is not None:
        mounts += [
            {
                "name": "config",
                "mountPath": "/etc/krb5.conf",
                "subPath": "krb5.conf",
                "readOnly": True,
            },
            {"name": "kerberos-ccache", "mountPath": CCACHE_DIR},
        ]
    return mounts


def _volumes(spec: InstanceSpec) -> list[dict[str, Any]]:
    names = _names(spec)
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names["config"]}},
        {"name": "dags", "persistentVolumeClaim": {"claimName": names["dags"]}},
        {"name": "logs", "emptyDir": {}},
        {"name": "metrics", "emptyDir": {}},
    ]
    if spec.kerberos is not None:
        volumes += [
            {"name": "kerberos-ccache", "emptyDir": {}},
            {
                "name": "kerberos-keytab",
                "secret": {"secretName": KEYTAB.name(spec), "defaultMode": 0o400},
            },
        ]
    return volumes


def _command(*words: str) -> list[str]:
    return ["bash", "-c", "exec " + " ".join(words)]


def _exec_probe(*words: str, initial: int = 60) -> dict[str, Any]:
    # Airflow CLI commands take 4-7 s to start: generous timeouts, probed once a minute.
    return {
        "exec": {"command": _command(*words)},
        "initialDelaySeconds": initial,
        "periodSeconds": 60,
        "timeoutSeconds": 30,
        "failureThreshold": 5,
    }


def _container(
    spec: InstanceSpec, name: str, args: list[str], resources: ComponentResources
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": f"{image_name(spec)}:{image_tag()}",
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": _env(spec),
        "volumeMounts": _mounts(spec),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    found = kubernetes_resources(resources)
    if found:
        container["resources"] = found
    return container


def _kerberos_sidecar(spec: InstanceSpec) -> dict[str, Any]:
    """Return the container renewing the principal's ticket cache shared with the task runners."""
    sidecar = _container(spec, "kerberos", _command("airflow", "kerberos"), ComponentResources())
    sidecar["volumeMounts"].append(
        {
            "name": "kerberos-keytab",
            "mountPath": KEYTAB_PATH_IN_IMAGE,
            "subPath": KEYTAB.key,
            "readOnly": True,
        }
    )
    sidecar["env"].append({"name": "AIRFLOW__KERBEROS__KEYTAB", "value": KEYTAB_PATH_IN_IMAGE})
    sidecar["env"].append({"name": "AIRFLOW__KERBEROS__CCACHE", "value": f"{CCACHE_DIR}/cache"})
    return sidecar


def _metrics_sidecar(spec: InstanceSpec, port: int) -> dict[str, Any]:
    """Return the container serving the pod's metric files to Prometheus (pod network, no auth)."""
    return {
        "name": "mlwf-metrics",
        "image": f"{image_name(spec)}:{image_tag()}",
        "args": _command("mlwf-stats-bridge", "serve", "--host", "0.0.0.0", "--port", str(port)),
        "env": [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": METRICS_DIR_IN_IMAGE}],
        "ports": [{"name": "metrics", "containerPort": port}],
        "volumeMounts": [{"name": "metrics", "mountPath": METRICS_DIR_IN_IMAGE}],
    }


def _pod(
    spec: InstanceSpec, component: str, main: dict[str, Any], *, runs_tasks: bool
) -> dict[str, Any]:
    names = _names(spec)
    wait = _container(
        spec,
        "wait-for-migrations",
        _command("airflow", "db", "check-migrations", "--migration-wait-timeout=300"),
        ComponentResources(),
    )
    containers = [main]
    if runs_tasks and spec.kerberos is not None:
        containers.append(_kerberos_sidecar(spec))
    if spec.metrics.enabled and spec.metrics.port is not None:
        containers.append(_metrics_sidecar(spec, spec.metrics.port))
    pod: dict[str, Any] = {
        "metadata": {"labels": labels(spec, component)},
        "spec": {
            "serviceAccountName": names["account"],
            "securityContext": {"runAsUser": 50000, "runAsGroup": 0, "fsGroup": 0},
            "initContainers": [wait],
            "containers": containers,
            "volumes": _volumes(spec),
        },
    }
    if spec.metrics.enabled and spec.metrics.port is not None:
        pod["metadata"]["annotations"] = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(spec.metrics.port),
        }
    return pod


def _deployment(spec: InstanceSpec, component: str, pod: dict[str, Any]) -> dict[str, Any]:
    selector = {"app.kubernetes.io/instance": spec.name, "app.kubernetes.io/component": component}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{spec.name}-{component}", "labels": labels(spec, component)},
        "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "template": pod},
    }


def _components(spec: InstanceSpec) -> list[dict[str, Any]]:
    resources = spec.resources
    local = spec.executor == "local"
    api = _container(spec, "api-server", _command("airflow", "api-server"), resources.api_server)
    api["ports"] = [{"name": "api", "containerPort": API_PORT_IN_CLUSTER}]
    health = {"httpGet": {"path": "/api/v2/monitor/health", "port": "api"}}
    api["startupProbe"] = {**health, "periodSeconds": 10, "failureThreshold": 30}
    api["readinessProbe"] = {**health, "periodSeconds": 10, "timeoutSeconds": 5}
    api["livenessProbe"] = {
        **health,
        "periodSeconds": 30,
        "timeoutSeconds": 10,
        "failureThreshold": 5,
    }
    with_password = spec.ldap is None  # mlwf-auth: users log in as themselves
    if with_password:
        api["volumeMounts"].append(
            {"name": "admin-password", "mountPath": SECRETS_DIR_IN_IMAGE, "readOnly": True}
        )
    api_pod = _pod(spec, "api-server", api, runs_tasks=False)
    if LDAP_BIND in needed_secrets(spec):
        api["volumeMounts"].append(
            {"name": "ldap-bind-password", "mountPath": LDAP_BIND_DIR_IN_IMAGE, "readOnly": True}
        )
        api_pod["spec"]["volumes"].append(
            {
                "name": "ldap-bind-password",
                "secret": {
                    "secretName": LDAP_BIND.name(spec),
                    "items": [{"key": LDAP_BIND.key, "path": "password"}],
                    "defaultMode": 0o400,
                },
            }
        )
    for item, folder in api_server_file_secrets(spec):
        # Only the API server checks logins: no other pod, hence no task, sees these files.
        api["volumeMounts"].append({"name": item.suffix, "mountPath": folder, "readOnly": True})
        api_pod["spec"]["volumes"].append(
            {
                "name": item.suffix,
                "secret": {
                    "secretName": item.name(spec),
                    "items": [{"key": item.key, "path": item.key}],
                    "defaultMode": 0o400,
                },
            }
        )
    if with_password:
        api_pod["spec"]["volumes"].append(
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
                    "defaultMode": 0o400,
                },
            }
        )
    objects = [_deployment(spec, "api-server", api_pod)]
    for component, job, field in (
        ("scheduler", "SchedulerJob", "scheduler"),
        ("dag-processor", "DagProcessorJob", "dag_processor"),
        ("triggerer", "TriggererJob", "triggerer"),
    ):
        main = _container(
            spec, component, _command("airflow", component), getattr(resources, field)
        )
        main["livenessProbe"] = _exec_probe(
            "airflow", "jobs", "check", "--job-type", job, "--local"
        )
        if component == "scheduler" and local:
            main["ports"] = [{"name": "worker-logs", "containerPort": WORKER_LOG_PORT}]
        pod = _pod(spec, component, main, runs_tasks=component == "scheduler" and local)
        objects.append(_deployment(spec, component, pod))
    return objects


def _workers(spec: InstanceSpec) -> list[dict[str, Any]]:
    names = _names(spec)
    command = _command(
        "airflow", "celery", "worker",
        "--queues", ",".join(spec.celery.queues),
        "--concurrency", str(spec.celery.concurrency),
    )  # fmt: skip
    worker = _container(spec, "worker", command, spec.resources.worker)
    worker["ports"] = [{"name": "worker-logs", "containerPort": WORKER_LOG_PORT}]
    worker["livenessProbe"] = _exec_probe(
        "celery", "--app", _CELERY_APP, "inspect", "ping", "-d", "celery@$(hostname)"
    )
    pod = _pod(spec, "worker", worker, runs_tasks=True)
    # Running tasks get ten minutes to finish when a worker is scaled down or moved.
    pod["spec"]["terminationGracePeriodSeconds"] = 600
    selector = {"app.kubernetes.io/instance": spec.name, "app.kubernetes.io/component": "worker"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": names["worker"], "labels": labels(spec, "worker")},
            "spec": {
                "clusterIP": "None",
                "selector": selector,
                "ports": [
                    {"name": "worker-logs", "port": WORKER_LOG_PORT, "targetPort": "worker-logs"}
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": names["worker"], "labels": labels(spec, "worker")},
            "spec": {
                "serviceName": names["worker"],
                "replicas": spec.celery.workers,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": selector},
                "template": pod,
            },
        },
    ]


def manifests(spec: InstanceSpec) -> list[dict[str, Any]]:
    """Return every Kubernetes object of instance ``spec``, in the order to apply them."""
    names = _names(spec)
    config_data = {"airflow.cfg": airflow_cfg(spec)}
    if spec.kerberos is not None:
        config_data["krb5.conf"] = krb5_conf(spec)
    migrate = _container(
        spec, "migrate", ["bash", "-c", migrate_script(spec)], ComponentResources()
    )
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": names["account"], "labels": labels(spec)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": names["config"], "labels": labels(spec)},
            "data": config_data,
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": names["dags"], "labels": labels(spec)},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": names["migrate"], "labels": labels(spec, "migrate")},
            "spec": {
                "backoffLimit": 2,
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": {"labels": labels(spec, "migrate")},
                    "spec": {
                        "serviceAccountName": names["account"],
                        "restartPolicy": "OnFailure",
                        "securityContext": {"runAsUser": 50000, "runAsGroup": 0, "fsGroup": 0},
                        "containers": [migrate],
                        "volumes": _volumes(spec),
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": api_service(spec), "labels": labels(spec, "api-server")},
            "spec": {
                "type": "ClusterIP",
                "selector": {
                    "app.kubernetes.io/instance": spec.name,
                    "app.kubernetes.io/component": "api-server",
                },
                "ports": [{"name": "api", "port": API_PORT_IN_CLUSTER, "targetPort": "api"}],
            },
        },
        *_components(spec),
    ]
    if spec.executor == "celery":
        objects += _workers(spec)
    return objects


def _readme(spec: InstanceSpec) -> RenderedFile:
    layout = cluster_layout(spec)
    lines = [
        f"# mlwf instance `{spec.name}`: plain Kubernetes manifests",
        "",
        "1. Build and push the image (`Dockerfile`); replace the image name in `manifests/` by",
        "   the pushed reference (or `kustomize edit set image`).",
        "2. Create the Secrets the manifests reference (`secrets.example.yaml` has placeholders):",
        "",
        *secret_instructions(spec),
        "",
        "3. `kubectl apply -f manifests/` (the Job migrates the database; the other pods wait for it).",
        "4. Copy each DAG folder into its bundle folder on the DAG volume:",
        "",
        *[f"   - `{bundle.source}` → `{path}`" for bundle, path in layout.bundles],
        "",
        "See docs/mlwf-instance/kubernetes.md for scaling workers and switching brokers.",
    ]
    return RenderedFile("README.md", "\n".join(lines) + "\n")


def render_kubernetes(spec: InstanceSpec) -> list[RenderedFile]:
    """Return the files of ``--target kubernetes``: ``manifests/*.yaml`` and their companions."""
    files = []
    for index, manifest in enumerate(manifests(spec)):
        name = f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        text = to_yaml(manifest)
        files.append(RenderedFile(f"manifests/{name}", text))
    return [*files, dockerfile(spec), secrets_example(spec), _readme(spec)]
