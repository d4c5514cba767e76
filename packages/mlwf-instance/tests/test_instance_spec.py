"""Instance(spec): the configuration, components and home an InstanceSpec gives, before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlwf_instance import Instance, UnknownComponentError
from mlwf_instance._spec import SpecError, parse_spec
from mlwf_instance._topology import check_airflow_config

SECRETS = {"api_secret_key": "k", "jwt_secret": "j", "fernet_key": "f"}
REPO = Path(__file__).resolve().parents[3]


def _spec(tmp_path: Path, **fields: object) -> dict[str, object]:
    return {"name": "team-a", "dag_folders": [str(tmp_path / "dags")], **fields}


def test_celery_on_postgres_with_the_database_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: a PostgreSQL + Celery spec gives CeleryExecutor, an sqla+ broker and db+ results on the metadata DB, and N worker components."""
    monkeypatch.setenv("TEAM_A_DB_PASSWORD", "pw-1")
    spec = parse_spec(
        _spec(
            tmp_path,
            database={
                "url": "postgresql://team@127.0.0.1/team_a",
                "password": {"env": "TEAM_A_DB_PASSWORD"},
            },
            executor="celery",
            celery={"workers": 3, "concurrency": 2, "queues": ["default", "gpu"]},
        )
    )
    instance = Instance(spec, home=tmp_path / "home")
    options = instance.config.airflow_options(SECRETS)
    assert options["core"]["executor"] == "CeleryExecutor"
    assert (
        options["database"]["sql_alchemy_conn"] == "postgresql+psycopg://team:pw-1@127.0.0.1/team_a"
    )
    assert options["database"]["sql_alchemy_conn_async"].startswith(
        "postgresql+asyncpg://team:pw-1@"
    )
    assert options["celery"]["broker_url"] == "sqla+postgresql+psycopg://team:pw-1@127.0.0.1/team_a"
    assert (
        options["celery"]["result_backend"] == "db+postgresql+psycopg://team:pw-1@127.0.0.1/team_a"
    )
    assert options["celery"]["worker_concurrency"] == "2"
    assert (
        options["celery"]["celery_config_options"] == "mlwf_instance._celery_config.CELERY_CONFIG"
    )
    assert options["operators"]["default_queue"] == "default"
    assert instance.components[-3:] == ("worker-1", "worker-2", "worker-3")
    argv = instance._component_command("worker-2")
    assert argv[-9:] == [
        "celery", "worker", "--celery-hostname", "worker-2@%h", "--concurrency", "2",
        "--queues", "default,gpu", "--skip-serve-logs",
    ]  # fmt: skip
    assert (
        instance.mask("connect to postgresql://team:pw-1@x") == "connect to postgresql://team:***@x"
    )
    # A team instance: metrics only for configuration editors (mlwf-stats-bridge's own default).
    assert options["mlwf_stats_bridge"]["metrics_access"] == "edit_configuration"


def test_redis_broker_gets_its_password_injected(tmp_path: Path) -> None:
    """Issue 11: a redis:// broker with broker_password becomes the URL with the quoted password; results stay in the database."""
    spec = parse_spec(
        _spec(
            tmp_path,
            database="mysql://root@127.0.0.1/team_a",
            executor="celery",
            celery={"broker": "redis://127.0.0.1:6379/0", "broker_password": "p/w"},
        )
    )
    options = Instance(spec, home=tmp_path / "home").config.airflow_options(SECRETS)
    assert options["celery"]["broker_url"] == "redis://:p%2Fw@127.0.0.1:6379/0"
    assert options["celery"]["result_backend"] == "db+mysql+pymysql://root@127.0.0.1/team_a"
    assert options["database"]["sql_alchemy_conn_async"] == "mysql+aiomysql://root@127.0.0.1/team_a"


def test_every_dag_folder_is_a_bundle_and_on_the_path(tmp_path: Path) -> None:
    """Issue 11: each dag_folders entry is a LocalDagBundle (its name, else dags-folder, dags-folder-2…) plus mlwf-constructed, all on PYTHONPATH."""
    spec = parse_spec(
        _spec(tmp_path)
        | {
            "dag_folders": [
                str(tmp_path / "a"),
                {"path": str(tmp_path / "b"), "name": "ml"},
                str(tmp_path / "c"),
            ]
        }
    )
    config = Instance(spec, home=tmp_path / "home").config
    bundles = json.loads(config.airflow_options(SECRETS)["dag_processor"]["dag_bundle_config_list"])
    assert [b["name"] for b in bundles] == [
        "dags-folder",
        "ml",
        "dags-folder-3",
        "mlwf-constructed",
    ]
    assert bundles[1]["kwargs"] == {"path": str(tmp_path / "b")}
    env = config.environment(SECRETS, base={})
    assert env["PYTHONPATH"].split(":")[:3] == [str(tmp_path / p) for p in "abc"]


def test_laptop_spec_is_local_sqlite_in_the_home(tmp_path: Path) -> None:
    """Issue 11: the laptop form runs LocalExecutor on SQLite in the home, with no workers and metrics open to configuration readers."""
    spec = parse_spec(_spec(tmp_path))
    instance = Instance(spec, home=tmp_path / "home")
    options = instance.config.airflow_options(SECRETS)
    assert options["core"]["executor"] == "LocalExecutor"
    assert (
        options["database"]["sql_alchemy_conn"]
        == f"sqlite:///{tmp_path}/home/airflow/airflow.db?timeout=30"
    )
    assert "mlwf_stats_bridge" not in options
    assert instance.components == (
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
    )
    with pytest.raises(UnknownComponentError, match="worker-1"):
        instance.kill_component("worker-1")


def test_home_comes_from_argument_spec_or_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: the home is --home, else the spec's home, else $XDG_STATE_HOME/mlwf/NAME."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert Instance(parse_spec(_spec(tmp_path))).home.root == tmp_path / "state" / "mlwf" / "team-a"
    spec = parse_spec(_spec(tmp_path, home=str(tmp_path / "spec-home")))
    assert Instance(spec).home.root == tmp_path / "spec-home"
    assert Instance(spec, home=tmp_path / "given").home.root == tmp_path / "given"


def test_airflow_config_adds_options_but_owned_ones_are_refused(tmp_path: Path) -> None:
    """Issue 11: airflow_config options land last; an option the runtime owns is refused naming airflow_config.<section>.<key>."""
    spec = parse_spec(_spec(tmp_path, airflow_config={"scheduler": {"parsing_processes": "1"}}))
    options = Instance(spec, home=tmp_path / "h").config.airflow_options(SECRETS)
    assert options["scheduler"]["parsing_processes"] == "1"
    # A spec changed without validation (model_copy) is still refused when an instance is built.
    owned = spec.model_copy(update={"airflow_config": {"core": {"hostname_callable": "x.y"}}})
    with pytest.raises(SpecError) as err:
        check_airflow_config(owned)
    assert err.value.errors[0][0] == "airflow_config.core.hostname_callable"
    with pytest.raises(SpecError):
        Instance(owned, home=tmp_path / "h")


def test_packaged_laptop_spec_equals_the_example() -> None:
    """Issue 11: mlwf up's packaged laptop.json is the same document as examples/instances/laptop.json."""
    example = REPO / "examples" / "instances" / "laptop.json"
    from importlib.resources import files

    packaged = json.loads(files("mlwf_instance").joinpath("laptop.json").read_text())
    assert packaged == json.loads(example.read_text())


def test_mlwf_up_is_the_laptop_spec_with_its_options(tmp_path: Path) -> None:
    """Issue 11: mlwf up runs the packaged laptop spec with its --home, --port and DAGs folder; example_constructors is registered only when present."""
    from mlwf_instance._cli import laptop_instance_spec

    dags = tmp_path / "dags"
    dags.mkdir()
    spec = laptop_instance_spec(tmp_path / ".mlwf", dags, 9123)
    assert (spec.name, spec.executor, spec.database.kind) == ("laptop", "local", "sqlite")
    assert [f.path for f in spec.dag_folders] == [dags]
    assert spec.api.port == 9123 and spec.home == tmp_path / ".mlwf"
    assert "bundle_modules" not in spec.airflow_config.get("mlwf_constructors", {})
    (dags / "example_constructors.py").write_text("")
    spec = laptop_instance_spec(tmp_path / ".mlwf", dags, 9123)
    assert spec.airflow_config["mlwf_constructors"]["bundle_modules"] == "example_constructors"
    options = Instance(spec).config.airflow_options(SECRETS)
    assert options["api"]["port"] == "9123"
    assert options["core"]["dags_folder"] == str(dags)
