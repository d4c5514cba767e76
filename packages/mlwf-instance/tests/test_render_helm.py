"""Issue 11: `mlwf instance render --target helm` writes values the official chart 1.22.0 accepts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlwf_instance._render import render
from mlwf_instance._render_helm import helm_values
from mlwf_instance._render_model import HELM_CHART_VERSION, RenderError
from mlwf_instance._spec import parse_spec
from render_support import (
    HELM_SCHEMA,
    SPECS,
    built_spec,
    example_specs,
    helm_schema_errors,
    load_strict,
)


def _values(spec_name: str, tmp_path: Path) -> dict[str, Any]:
    files = {f.path: f for f in render(built_spec(spec_name, tmp_path), "helm")}
    values: dict[str, Any] = yaml.safe_load(files["values.yaml"].content)
    return values


def test_the_vendored_schema_is_the_named_chart_release() -> None:
    """Issue 11: the schema the values are checked against is chart 1.22.0's (Airflow 3.2.2 default)."""
    schema = json.loads(HELM_SCHEMA.read_text())
    assert schema["properties"]["defaultAirflowTag"]["default"] == "3.2.2"
    assert "apiServer" in schema["properties"] and "dagBundleConfigList" in json.dumps(
        schema["properties"]["dagProcessor"]
    )


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_rendered_values_validate_against_the_chart_schema(spec_name: str, tmp_path: Path) -> None:
    """Issue 11: the values of every team spec pass the chart's values.schema.json."""
    assert helm_schema_errors(_values(spec_name, tmp_path)) == []


@pytest.mark.parametrize("spec_name", sorted(example_specs()))
def test_example_specs_render_to_valid_values(spec_name: str) -> None:
    """Issue 11: every examples/instances spec on a server database renders to valid chart values."""
    spec = example_specs()[spec_name]
    if spec.database.kind == "sqlite":
        with pytest.raises(RenderError, match=r"^database\.url"):
            render(spec, "helm")
        return
    assert helm_schema_errors(helm_values(spec)) == []


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ((), "executer"),
        (("workers", "celery"), "replica"),
        (("data",), "metadataSecret"),
        (("kerberos",), "principle"),
        (("statsd",), "enable"),
    ],
)
def test_a_misspelt_key_fails_the_schema(path: tuple[str, ...], key: str, tmp_path: Path) -> None:
    """Issue 11: the schema check is not vacuous: a misspelt key in the values fails it."""
    values = copy.deepcopy(_values("team-amqp-kerberos", tmp_path))
    node = values
    for part in path:
        node = node.setdefault(part, {})
    node[key] = 1
    errors = helm_schema_errors(values)
    assert errors and any(key in error for error in errors), errors


def test_a_mistyped_value_fails_the_schema(tmp_path: Path) -> None:
    """Issue 11: a replicas count given as a string fails the schema."""
    values = _values("team-postgres", tmp_path)
    values["workers"]["celery"]["replicas"] = "3"
    assert any("replicas" in error for error in helm_schema_errors(values))


def test_values_map_the_spec(tmp_path: Path) -> None:
    """Issue 11: executor, workers, broker and metadata Secrets, bundles, stats bridge, resources, account."""
    values = _values("team-postgres", tmp_path)
    assert values["executor"] == "CeleryExecutor"
    assert values["workers"]["celery"]["replicas"] == 3
    assert values["workers"]["celery"]["queue"] == "default,gpu"
    assert values["workers"]["celery"]["resources"]["limits"] == {"memory": "4Gi"}
    assert values["config"]["celery"]["worker_concurrency"] == "8"
    assert values["data"] == {
        "metadataSecretName": "recsys-airflow-metadata",
        "brokerUrlSecretName": "recsys-airflow-broker",
    }
    assert values["postgresql"] == {"enabled": False} and values["redis"] == {"enabled": False}
    assert values["statsd"] == {"enabled": False}
    assert values["config"]["metrics"] == {
        "statsd_on": "True",
        "statsd_custom_client_path": "mlwf_stats_bridge.PrometheusStatsClient",
    }
    assert "executor" not in values["config"]["core"]  # the chart refuses config.core.executor
    bundles = [b["name"] for b in values["dagProcessor"]["dagBundleConfigList"]]
    assert bundles == ["dags-folder", "pipelines", "mlwf-constructed"]  # as `mlwf instance up`
    assert values["dags"]["persistence"]["accessMode"] == "ReadWriteMany"
    # The chart's DAG claim is "<release>-dags"; the API server writes constructed DAGs there.
    mounts = {m["name"]: m["mountPath"] for m in values["apiServer"]["extraVolumeMounts"]}
    assert mounts["dags"] == "/opt/airflow/dags"
    claims = [v for v in values["apiServer"]["extraVolumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"name": "dags", "persistentVolumeClaim": {"claimName": "recsys-dags"}}]
    assert values["apiServer"]["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}}
    for section in ("apiServer", "scheduler", "dagProcessor", "triggerer", "migrateDatabaseJob"):
        assert values[section]["serviceAccount"] == {"create": False, "name": "svc-recsys"}
    assert values["workers"]["celery"]["serviceAccount"]["name"] == "svc-recsys"
    assert "kerberos" not in values


def test_local_executor_kerberos_and_metrics_port(tmp_path: Path) -> None:
    """Issue 11: LocalExecutor has no workers; kerberos enables the sidecar; a metrics port a sidecar."""
    local = _values("team-local-executor", tmp_path)
    assert local["executor"] == "LocalExecutor" and "workers" not in local
    assert "brokerUrlSecretName" not in local["data"]
    kerberos = _values("team-amqp-kerberos", tmp_path)
    assert kerberos["kerberos"]["enabled"] is True
    assert kerberos["kerberos"]["principal"] == "vision@EXAMPLE.COM"
    assert "default_realm = EXAMPLE.COM" in kerberos["kerberos"]["config"]
    assert kerberos["workers"]["celery"]["kerberosSidecar"] == {"enabled": True}
    redis = _values("team-redis", tmp_path)
    sidecars = redis["scheduler"]["extraContainers"]
    assert sidecars[0]["command"][:2] == ["mlwf-stats-bridge", "serve"]
    assert "9112" in sidecars[0]["command"]


@pytest.mark.parametrize(
    ("spec_name", "scheme"),
    [
        (
            "team-postgres",
            "sqla+postgresql+psycopg://recsys:<password>@db.example.com/recsys_airflow",
        ),
        (
            "team-mariadb",
            "sqla+mysql+pymysql://fraud:<password>@mariadb.example.com:3306/fraud_airflow",
        ),
        ("team-redis", "redis://redis.example.com:6379/0"),
        ("team-amqp-kerberos", "amqp://vision:<password>@rabbit.example.com:5672/vision"),
    ],
)
def test_the_secrets_example_names_every_secret_with_placeholders(
    spec_name: str, scheme: str, tmp_path: Path
) -> None:
    """Issue 11: secrets.example.yaml holds one valid Secret per key the values name, broker URL shaped by the spec."""
    files = {f.path: f for f in render(built_spec(spec_name, tmp_path), "helm")}
    documents = [d for d in yaml.safe_load_all(files["secrets.example.yaml"].content) if d]
    for document in documents:
        load_strict(document)
    by_name = {d["metadata"]["name"]: d["stringData"] for d in documents}
    values = yaml.safe_load(files["values.yaml"].content)
    name = values["data"]["brokerUrlSecretName"]
    assert by_name[name] == {"connection": scheme}
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values[key] in by_name
    assert values["data"]["metadataSecretName"] in by_name
    volumes = {v["name"]: v for v in values["apiServer"]["extraVolumes"]}
    if spec_name == "team-amqp-kerberos":  # ldap: users log in as themselves, no admin password
        assert "admin-password" not in volumes
        # The bind password: a file in the API server only, read by ldap_bind_password_cmd.
        assert volumes["ldap-bind-password"]["secret"]["secretName"] == "vision-ldap-bind-password"
        assert "vision-ldap-bind-password" in by_name
        mounts = {m["name"]: m for m in values["apiServer"]["extraVolumeMounts"]}
        cmd = values["config"]["mlwf_auth"]["ldap_bind_password_cmd"]
        assert cmd == f"cat {mounts['ldap-bind-password']['mountPath']}/password"
        assert "secret" not in values and "ldap-bind-password" not in str(values["workers"])
    else:
        assert volumes["admin-password"]["secret"]["secretName"] in by_name
        assert "ldap-bind-password" not in volumes
    assert (
        "helm install" in files["README.md"].content
        and HELM_CHART_VERSION in files["README.md"].content
    )
    assert "FROM apache/airflow:" in files["Dockerfile"].content
    assert "mlwf-instance[" in files["Dockerfile"].content


def test_a_laptop_spec_cannot_go_to_a_cluster() -> None:
    """Issue 11: a sqlite spec is refused for helm, naming database.url."""
    spec = parse_spec({"name": "laptop"})
    with pytest.raises(RenderError, match=r"^database\.url: \"sqlite\" cannot run on a cluster"):
        render(spec, "helm")


def test_a_secret_option_in_airflow_config_is_refused(tmp_path: Path) -> None:
    """Issue 11: airflow_config may not set a secret-bearing option such as [core] fernet_key."""
    # The spec refuses it when parsed; render refuses it too for a spec built in code.
    spec = parse_spec(SPECS["team-mariadb"]).model_copy(
        update={"airflow_config": {"core": {"fernet_key": "x"}}}
    )
    with pytest.raises(
        RenderError, match=r"^airflow_config\.core\.fernet_key: a secret-bearing option"
    ):
        render(spec, "helm")


def test_a_mariadb_image_puts_the_scheduler_fix_on_every_path(tmp_path: Path) -> None:
    """The Dockerfile of a MySQL/MariaDB instance writes a .pth file that puts mlwf's
    ``_mariadb_compat`` folder (the scheduler's query fix) on sys.path; its RUN line works."""
    import shlex
    import subprocess
    import sys

    from mlwf_instance._render import render
    from mlwf_instance._spec import parse_spec

    spec = parse_spec({"name": "team", "database": "mysql://u@db/airflow", "executor": "celery"})
    dockerfile = {f.path: f.content for f in render(spec, "helm")}["Dockerfile"]
    run = [line for line in dockerfile.splitlines() if line.startswith("RUN python -c ")]
    assert len(run) == 1
    postgres = parse_spec({"name": "team", "database": "postgresql://u@db/a", "executor": "celery"})
    assert (
        "RUN python -c" not in {f.path: f.content for f in render(postgres, "helm")}["Dockerfile"]
    )
    # Run the line against a stand-in site-packages holding an `mlwf_instance` package.
    site_dir = tmp_path / "site-packages"
    (site_dir / "mlwf_instance" / "_mariadb_compat").mkdir(parents=True)
    (site_dir / "mlwf_instance" / "__init__.py").write_text("")
    argv = shlex.split(run[0].removeprefix("RUN "))
    subprocess.run(
        [sys.executable, *argv[1:]], cwd=tmp_path, check=True, env={"PYTHONPATH": str(site_dir)}
    )
    folder = site_dir / "mlwf_instance" / "_mariadb_compat"
    assert (site_dir / "mlwf-mariadb-compat.pth").read_text() == f"{folder}\n"
    seen = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import site, sys; site.addsitedir({str(site_dir)!r}); print(sys.path)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(folder) in seen
