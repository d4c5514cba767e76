"""Issue 11: `mlwf instance render --target local` writes what `mlwf instance up` runs here."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_instance._render import render, write_rendered
from mlwf_instance._spec import parse_spec, rebase_spec
from render_support import SPECS, built_spec, example_specs


def _files(spec_name: str, tmp_path: Path) -> dict[str, str]:
    return {f.path: f.content for f in render(built_spec(spec_name, tmp_path), "local")}


def test_airflow_cfg_references_every_secret_through_a_cmd_option(tmp_path: Path) -> None:
    """Issue 11: the local airflow.cfg reads each secret-bearing option from a file, inlining none."""
    spec = built_spec("team-postgres", tmp_path).model_copy(update={"home": tmp_path / "home"})
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string({f.path: f.content for f in render(spec, "local")}["airflow.cfg"])
    secrets = tmp_path / "home" / "secrets"
    for section, key, file in (
        ("database", "sql_alchemy_conn", "sql_alchemy_conn"),
        ("celery", "broker_url", "broker_url"),
        ("core", "fernet_key", "fernet_key"),
        ("api", "secret_key", "api_secret_key"),
        ("api_auth", "jwt_secret", "jwt_secret"),
    ):
        assert not parser.has_option(section, key)
        assert parser[section][f"{key}_cmd"] == f"cat {secrets / file}"
    assert parser["core"]["executor"] == "CeleryExecutor"
    bundles = json.loads(parser["dag_processor"]["dag_bundle_config_list"])
    assert [b["kwargs"]["path"] for b in bundles] == [
        str(tmp_path / "dags"),
        str(tmp_path / "more" / "pipelines"),
        str(tmp_path / "home" / "constructed"),
    ]


def test_airflow_reads_the_secret_files_through_the_cmd_options(tmp_path: Path) -> None:
    """Issue 11: a real Airflow, given the rendered airflow.cfg and env, reads the secret from its file."""
    spec = built_spec("team-postgres", tmp_path).model_copy(update={"home": tmp_path / "home"})
    out = tmp_path / "out"
    write_rendered(render(spec, "local"), out)
    secrets = tmp_path / "home" / "secrets"
    secrets.mkdir(parents=True)
    values = {
        "sql_alchemy_conn": f"sqlite:///{tmp_path / 'from-a-file.db'}",
        "broker_url": "redis://127.0.0.1:6379/9",
        "fernet_key": "a-fernet-key-from-a-file",
        "api_secret_key": "api-key-from-a-file",
        "jwt_secret": "jwt-from-a-file",
    }
    for name, value in values.items():
        # Without a trailing newline: Airflow keeps a *_cmd command's output as it is.
        (secrets / name).write_text(value)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    for line in (out / "instance.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.strip("'")
    # airflow.cfg is read from AIRFLOW_CONFIG: put the rendered one where the env points.
    Path(env["AIRFLOW_CONFIG"]).parent.mkdir(parents=True)
    Path(env["AIRFLOW_CONFIG"]).write_text((out / "airflow.cfg").read_text())
    code = (
        "from airflow.configuration import conf; "
        "print(conf.get('core', 'fernet_key'), conf.get('database', 'sql_alchemy_conn'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == (
        f"a-fernet-key-from-a-file {values['sql_alchemy_conn']}"
    )


def test_processes_list_the_components_and_each_worker(tmp_path: Path) -> None:
    """Issue 11: processes.json lists migrate, the components and one line per Celery worker."""
    processes = json.loads(_files("team-postgres", tmp_path)["processes.json"])["processes"]
    names = [p["name"] for p in processes]
    assert names[:2] == ["db-migrate", "api-server"]
    assert {"scheduler", "dag-processor", "triggerer"} <= set(names)
    workers = [p for p in processes if p["name"].startswith("worker-")]
    assert len(workers) == 3
    # The worker's arguments are the runtime's own (mlwf_instance._topology.worker_args).
    argv = workers[0]["argv"]
    assert argv[argv.index("--queues") + 1] == "default,gpu"
    assert argv[argv.index("--concurrency") + 1] == "8"
    assert argv[argv.index("--celery-hostname") + 1] == "worker-1@%h"


def test_a_laptop_spec_renders_its_sqlite_database_inline(tmp_path: Path) -> None:
    """Issue 11: the sqlite laptop spec names its database file (not a secret) and has no workers."""
    spec = rebase_spec(parse_spec({"name": "laptop", "home": "h"}), tmp_path)
    files = {f.path: f for f in render(spec, "local")}
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(files["airflow.cfg"].content)
    assert (
        parser["database"]["sql_alchemy_conn"]
        == f"sqlite:///{tmp_path / 'h' / 'airflow' / 'airflow.db'}?timeout=30"
    )
    assert parser["core"]["executor"] == "LocalExecutor"
    assert files["airflow.cfg"].mode == 0o600 and files["instance.env"].mode == 0o600


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_every_team_spec_renders_locally(spec_name: str, tmp_path: Path) -> None:
    """Issue 11: each team spec renders an airflow.cfg that configparser reads."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(_files(spec_name, tmp_path)["airflow.cfg"])
    assert parser.has_section("core")


@pytest.mark.parametrize("spec_name", sorted(example_specs()))
def test_every_example_spec_renders_locally(spec_name: str) -> None:
    """Issue 11: each examples/instances spec renders a readable airflow.cfg with its executor."""
    spec = example_specs()[spec_name]
    files = {f.path: f.content for f in render(spec, "local")}
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(files["airflow.cfg"])
    executor = "CeleryExecutor" if spec.executor == "celery" else "LocalExecutor"
    assert parser["core"]["executor"] == executor
    names = [p["name"] for p in json.loads(files["processes.json"])["processes"]]
    assert len([n for n in names if n.startswith("worker-")]) == (
        spec.celery.workers if spec.executor == "celery" else 0
    )


@pytest.mark.parametrize(
    ("host", "url"),
    [("::1", "http://[::1]:8123"), ("127.0.0.1", "http://127.0.0.1:8123")],
)
def test_an_ipv6_api_host_is_bracketed_in_every_url(host: str, url: str, tmp_path: Path) -> None:
    """An IPv6 ``api.host`` gives ``http://[::1]:PORT`` URLs (``http://::1:PORT`` is no URL)."""
    spec = rebase_spec(
        parse_spec({"name": "laptop", "home": "h", "api": {"host": host, "port": 8123}}), tmp_path
    )
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string({f.path: f.content for f in render(spec, "local")}["airflow.cfg"])
    assert parser["api"]["base_url"] == url
    assert parser["core"]["execution_api_server_url"] == f"{url}/execution/"


@pytest.mark.parametrize("target", ["local", "helm", "kubernetes"])
def test_a_postgresql_url_with_query_parameters_is_refused_by_render(
    target: str, tmp_path: Path
) -> None:
    """A rendered instance derives its asyncpg URL from the sync one: libpq parameters would
    break it, so render refuses them with a way out (libpq's environment)."""
    from mlwf_instance._render_model import RenderError

    spec = rebase_spec(
        parse_spec(
            {
                "name": "team",
                "home": "h",
                "database": "postgresql://u@db/airflow?sslmode=verify-full",
                "executor": "celery",
            }
        ),
        tmp_path,
    )
    with pytest.raises(RenderError, match="query parameters work with `mlwf instance up` only"):
        render(spec, target)
    mysql = parse_spec(
        {"name": "team", "home": "h", "database": "mysql://u@db/a?connect_timeout=5"}
    )
    assert render(rebase_spec(mysql, tmp_path), target)
