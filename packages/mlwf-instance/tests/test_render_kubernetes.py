"""Issue 11: `mlwf instance render --target kubernetes` writes manifests the Kubernetes API accepts."""

from __future__ import annotations

import configparser
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlwf_instance._render import render
from mlwf_instance._render_kubernetes import manifests
from mlwf_instance._render_model import RenderError
from mlwf_instance._spec import parse_spec
from render_support import SPECS, ManifestError, built_spec, example_specs, load_strict

TEAM_SPECS = sorted(SPECS)


def _rendered(spec_name: str, tmp_path: Path) -> list[dict[str, Any]]:
    spec = built_spec(spec_name, tmp_path)
    files = render(spec, "kubernetes")
    return [yaml.safe_load(f.content) for f in files if f.path.startswith("manifests/")]


@pytest.mark.parametrize("spec_name", TEAM_SPECS)
def test_every_manifest_loads_strictly_into_the_client_models(
    spec_name: str, tmp_path: Path
) -> None:
    """Issue 11: each rendered manifest loads into the official client's model with no unknown field."""
    documents = _rendered(spec_name, tmp_path)
    kinds = [d["kind"] for d in documents]
    for document in documents:
        load_strict(document)
    for kind in ("ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Job", "Service"):
        assert kind in kinds
    assert kinds.count("Deployment") == 4  # api-server, scheduler, dag-processor, triggerer


@pytest.mark.parametrize("spec_name", sorted(example_specs()))
def test_example_specs_render_to_strict_manifests(spec_name: str) -> None:
    """Issue 11: every examples/instances spec on a server database renders to loadable manifests."""
    spec = example_specs()[spec_name]
    if spec.database.kind == "sqlite":
        with pytest.raises(RenderError, match=r"^database\.url"):
            render(spec, "kubernetes")
        return
    for item in render(spec, "kubernetes"):
        if item.path.startswith("manifests/"):
            load_strict(yaml.safe_load(item.content))


def test_the_strict_loader_catches_a_misspelt_field(tmp_path: Path) -> None:
    """Issue 11: the checker fails a manifest with a misspelt field the client would ignore."""
    deployment = next(d for d in _rendered("team-postgres", tmp_path) if d["kind"] == "Deployment")
    load_strict(deployment)
    broken = copy.deepcopy(deployment)
    pod = broken["spec"]["template"]["spec"]
    pod["contaners"] = pod.pop("containers")
    with pytest.raises(ManifestError, match=r"spec\.template\.spec\.contaners: unknown field"):
        load_strict(broken)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("spec", "replicas"), "1", "expected int"),
        (
            ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"),
            True,
            "expected int",
        ),
        (("spec", "template", "spec", "containers", 0, "env"), {"A": "b"}, "expected a list"),
        (("metadata", "labels"), ["a"], "expected a mapping"),
    ],
)
def test_the_strict_loader_catches_a_mistyped_field(
    path: tuple[Any, ...], value: Any, message: str, tmp_path: Path
) -> None:
    """Issue 11: a value of the wrong type fails the checker, naming where it is."""
    documents = _rendered("team-postgres", tmp_path)
    api = next(
        d
        for d in documents
        if d["metadata"]["name"] == "recsys-api-server" and d["kind"] == "Deployment"
    )
    broken = copy.deepcopy(api)
    node = broken
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ManifestError, match=message):
        load_strict(broken)


def test_a_missing_required_field_fails(tmp_path: Path) -> None:
    """Issue 11: a container without its required name fails the client's own validation."""
    api = next(d for d in _rendered("team-postgres", tmp_path) if d["kind"] == "Deployment")
    del api["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(ManifestError, match="name"):
        load_strict(api)


def test_workers_resources_account_and_selectors_follow_the_spec(tmp_path: Path) -> None:
    """Issue 11: N Celery workers, per-component resources, the service account and labels."""
    documents = {
        (d["kind"], d["metadata"]["name"]): d for d in _rendered("team-postgres", tmp_path)
    }
    workers = documents[("StatefulSet", "recsys-worker")]
    assert workers["spec"]["replicas"] == 3
    worker = workers["spec"]["template"]["spec"]["containers"][0]
    assert "--queues default,gpu --concurrency 8" in worker["args"][-1]
    assert worker["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "4Gi"},
    }
    assert "livenessProbe" in worker
    api = documents[("Deployment", "recsys-api-server")]["spec"]["template"]["spec"]
    assert api["containers"][0]["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}}
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(api["containers"][0])
    assert documents[("ServiceAccount", "svc-recsys")]
    for (kind, _name), document in documents.items():
        assert document["metadata"]["labels"]["app.kubernetes.io/instance"] == "recsys"
        if kind in ("Deployment", "StatefulSet"):
            template = document["spec"]["template"]
            selector = document["spec"]["selector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items()
            assert template["spec"]["serviceAccountName"] == "svc-recsys"
            assert template["spec"]["initContainers"][0]["name"] == "wait-for-migrations"
            assert "livenessProbe" in template["spec"]["containers"][0]
    service = documents[("Service", "recsys-api-server")]
    assert service["spec"]["selector"].items() <= api_labels(documents).items()
    job = documents[("Job", "recsys-airflow-migrate")]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][-1].startswith(
        "airflow db migrate && "
    )


def api_labels(documents: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    """Return the labels of the API server's pods."""
    labels: dict[str, str] = documents[("Deployment", "recsys-api-server")]["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def test_the_config_map_holds_the_airflow_cfg_without_secrets(tmp_path: Path) -> None:
    """Issue 11: airflow.cfg in the ConfigMap carries the spec's options; secrets come as env refs."""
    documents = _rendered("team-postgres", tmp_path)
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(config_map["data"]["airflow.cfg"])
    assert parser["core"]["executor"] == "CeleryExecutor"
    assert parser["celery"]["worker_concurrency"] == "8"
    assert (
        parser["metrics"]["statsd_custom_client_path"] == "mlwf_stats_bridge.PrometheusStatsClient"
    )
    assert not parser.has_option("database", "sql_alchemy_conn")
    api = next(d for d in documents if d["kind"] == "Deployment")
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"] == {
        "name": "recsys-airflow-metadata",
        "key": "connection",
    }
    assert (
        env["AIRFLOW__CELERY__BROKER_URL"]["valueFrom"]["secretKeyRef"]["name"]
        == "recsys-airflow-broker"
    )


def test_local_executor_has_no_workers_and_kerberos_adds_a_sidecar(tmp_path: Path) -> None:
    """Issue 11: LocalExecutor renders no worker StatefulSet; a spec with kerberos gets the renewer."""
    local = _rendered("team-local-executor", tmp_path)
    assert not [d for d in local if d["kind"] == "StatefulSet"]
    kerberos = {
        (d["kind"], d["metadata"]["name"]): d for d in _rendered("team-amqp-kerberos", tmp_path)
    }
    pod = kerberos[("StatefulSet", "vision-worker")]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["worker", "kerberos"]
    assert pod["containers"][1]["args"][-1] == "exec airflow kerberos"
    keytab = next(v for v in pod["volumes"] if v["name"] == "kerberos-keytab")
    assert keytab["secret"]["secretName"] == "vision-kerberos-keytab"
    assert "krb5.conf" in kerberos[("ConfigMap", "vision-airflow-config")]["data"]


def test_a_service_account_that_is_no_kubernetes_name_is_refused(tmp_path: Path) -> None:
    """Issue 11: service_account "svc_Recsys@REALM" cannot name a ServiceAccount: the error says so."""
    spec = parse_spec({**SPECS["team-mariadb"], "service_account": "svc_Recsys@REALM"})
    with pytest.raises(
        RenderError, match=r"^service_account: 'svc_Recsys@REALM' is not a Kubernetes name"
    ):
        manifests(spec)


@pytest.mark.parametrize("database", ["postgres_url", "mariadb_url"])
def test_the_migration_job_prepares_the_database_broker(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Issue 11: the Job's broker step, run as rendered, creates kombu's queue rows in a real database."""
    import subprocess
    import sys

    import sqlalchemy

    url = request.getfixturevalue(database)
    documents = _rendered("team-postgres", tmp_path)
    job = next(d for d in documents if d["kind"] == "Job")
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][-1]
    migrate, prepare = script.split(" && exec ", 1)
    assert migrate == "airflow db migrate" and prepare.startswith("python -c ")
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "PATH": "/usr/bin:/bin"}
    command = prepare.replace("python -c", f"{sys.executable} -c", 1)
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            names = connection.execute(sqlalchemy.text("SELECT name FROM kombu_queue")).scalars()
            assert sorted(names) == ["default", "gpu"]
    finally:
        engine.dispose()


def test_other_brokers_migrate_only(tmp_path: Path) -> None:
    """Issue 11: with a Redis broker or LocalExecutor the Job runs `airflow db migrate` alone."""
    for name in ("team-redis", "team-local-executor"):
        job = next(d for d in _rendered(name, tmp_path) if d["kind"] == "Job")
        assert (
            job["spec"]["template"]["spec"]["containers"][0]["args"][-1]
            == "exec airflow db migrate"
        )
