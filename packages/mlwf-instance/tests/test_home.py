"""The instance home: layout, secrets, credentials and the Airflow configuration it produces."""

from __future__ import annotations

import configparser
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_instance import (
    CredentialsUnavailableError,
    InstanceConfig,
    InstanceHome,
    InvalidConfigError,
)

SECRETS = {"api_secret_key": "k", "jwt_secret": "j", "fernet_key": "f"}


def _config(tmp_path: Path, **kwargs: object) -> InstanceConfig:
    home = InstanceHome(tmp_path / "home")
    return InstanceConfig(home=home, dags_folder=tmp_path / "dags", **kwargs)  # type: ignore[arg-type]


def test_environment_sets_home_database_and_embedded_defaults(tmp_path: Path) -> None:
    """The child environment points AIRFLOW_HOME and the SQLite DB into the home, with low parallelism."""
    config = _config(tmp_path, port=9999)
    env = config.environment(SECRETS, base={})
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home" / "airflow")
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"sqlite:///{tmp_path}/home/airflow/airflow.db?timeout=30"
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["AIRFLOW__API__PORT"] == "9999"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9999/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "j"


def test_extra_config_becomes_env_vars_and_wins(tmp_path: Path) -> None:
    """Overrides become AIRFLOW__SECTION__KEY variables that win; inherited unit-test mode is dropped."""
    config = _config(
        tmp_path, extra_config={"mlwf_types": {"mode": "error"}, "core": {"parallelism": "2"}}
    )
    env = config.environment(
        SECRETS, base={"UNRELATED": "kept", "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}
    )
    assert "AIRFLOW__CORE__UNIT_TEST_MODE" not in env
    assert env["AIRFLOW__MLWF_TYPES__MODE"] == "error"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["UNRELATED"] == "kept"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"bad-section": {"k": "v"}}, "'bad-section'"),
        ({"core": {"a__b": "v"}}, "'a__b'"),
        ({"core": {"parallelism": 2}}, "[core] parallelism must be a string"),
    ],
)
def test_invalid_overrides_are_rejected_by_name(
    tmp_path: Path, extra: dict[str, dict[str, object]], fragment: str
) -> None:
    """An override that cannot be an AIRFLOW__SECTION__KEY variable is refused, naming it."""
    config = _config(tmp_path, extra_config=extra)
    with pytest.raises(InvalidConfigError) as info:
        config.environment(SECRETS, base={})
    assert fragment in str(info.value)


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    """Secrets are generated on first use, stored with mode 0600, and identical afterwards."""
    home = InstanceHome(tmp_path / "home")
    home.create()
    first = home.load_or_create_secrets()
    assert set(first) == {"api_secret_key", "jwt_secret", "fernet_key"}
    assert stat.S_IMODE(home.secrets_file.stat().st_mode) == 0o600
    assert home.load_or_create_secrets() == first


def test_garbled_secrets_file_is_reported(tmp_path: Path) -> None:
    """A corrupt secrets file raises an error naming the file instead of silently regenerating."""
    home = InstanceHome(tmp_path / "home")
    home.create()
    home.secrets_file.write_text("{not json")
    with pytest.raises(InvalidConfigError, match=r"secrets\.json"):
        home.load_or_create_secrets()


def test_airflow_cfg_holds_the_same_options(tmp_path: Path) -> None:
    """The written airflow.cfg parses and carries the same options as the environment."""
    config = _config(tmp_path, extra_config={"mlwf_types": {"mode": "warn"}})
    config.home.create()
    path = config.write_airflow_cfg(SECRETS)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    assert parser["core"]["dags_folder"] == str(tmp_path / "dags")
    assert parser["mlwf_types"]["mode"] == "warn"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_credentials_come_from_the_passwords_file(tmp_path: Path) -> None:
    """The admin password is read from SimpleAuthManager's passwords file; absence is a clear error."""
    home = InstanceHome(tmp_path / "home")
    home.create()
    with pytest.raises(CredentialsUnavailableError, match="does not exist yet"):
        home.read_credentials()
    home.passwords_file.write_text(json.dumps({"admin": "s3cret"}))
    creds = home.read_credentials()
    assert (creds.username, creds.password) == ("admin", "s3cret")
    with pytest.raises(CredentialsUnavailableError, match="'bob'"):
        home.read_credentials("bob")


def test_airflow_reads_the_generated_configuration(tmp_path: Path) -> None:
    """A real ``airflow config get-value`` in the instance environment sees the embedded settings."""
    config = _config(tmp_path, extra_config={"dag_processor": {"refresh_interval": "7"}})
    config.home.create()
    config.write_airflow_cfg(SECRETS)
    env = config.environment(SECRETS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "config",
            "get-value",
            "dag_processor",
            "refresh_interval",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "7"


def test_home_is_private_also_when_reused(tmp_path: Path) -> None:
    """Issue 10 item 7: create() makes the home 0700 and narrows its secret files to 0600, also in a home an older mlwf left readable."""
    home = InstanceHome(tmp_path / "home")
    home.root.mkdir(mode=0o755)
    home.airflow_home.mkdir(mode=0o755)
    home.logs.mkdir(mode=0o755)
    readable = [home.passwords_file, home.database, home.log_file("api-server")]
    for path in readable:
        path.write_text("x")
        path.chmod(0o644)
    home.create()
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    for path in readable:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for created in (home.metrics_dir, home.constructed):
        assert stat.S_IMODE(created.stat().st_mode) == 0o700, created


def test_a_shared_sticky_directory_keeps_its_mode(tmp_path: Path) -> None:
    """Issue 10 item 7: a home that is a shared sticky directory (like /tmp) is not narrowed, its files are."""
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(0o1777)
    home = InstanceHome(root)
    home.create()
    assert stat.S_IMODE(root.stat().st_mode) == 0o1777
    assert stat.S_IMODE(home.logs.stat().st_mode) == 0o700


def test_admin_password_is_generated_privately_and_kept(tmp_path: Path) -> None:
    """Issue 10 item 7: ensure_credentials writes a 16-character password in a 0600 file once and returns it afterwards."""
    home = InstanceHome(tmp_path / "home")
    home.create()
    first = home.ensure_credentials()
    assert first.username == "admin" and len(first.password) == 16
    assert stat.S_IMODE(home.passwords_file.stat().st_mode) == 0o600
    assert home.ensure_credentials() == first == home.read_credentials()
    home.passwords_file.write_text("[1, 2]")
    with pytest.raises(CredentialsUnavailableError, match="JSON object"):
        home.ensure_credentials()


def test_instances_go_to_a_bundle_in_the_home(tmp_path: Path) -> None:
    """Issue 10 item 16: the DAGs folder and <home>/constructed are two LocalDagBundles, and constructors write to the latter."""
    from mlwf_instance import EmbeddedInstance

    config = EmbeddedInstance(tmp_path / "home", dags_folder=tmp_path / "dags").config
    options = config.airflow_options(SECRETS)
    bundles = json.loads(options["dag_processor"]["dag_bundle_config_list"])
    assert [b["name"] for b in bundles] == ["dags-folder", "mlwf-constructed"]
    assert bundles[1]["kwargs"] == {"path": str(config.home.constructed)}
    assert options["mlwf_constructors"] == {
        "instances_folder": str(config.home.constructed),
        "bundle_name": "mlwf-constructed",
    }
    env = config.environment(SECRETS, base={"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(":") == [str(config.dags_folder), "/elsewhere"]


def test_one_loopback_log_server_port_for_workers_and_triggerer(tmp_path: Path) -> None:
    """Issue 10 item 13: the chosen log server port serves worker and triggerer logs, and task hostnames are loopback."""
    options = _config(tmp_path, log_server_port=4711).airflow_options(SECRETS)
    assert options["logging"]["worker_log_server_port"] == "4711"
    assert options["logging"]["trigger_log_server_port"] == "4711"
    # The log server runs in the api-server's process: uvicorn, never gunicorn's forked workers.
    assert options["api"]["server_type"] == "uvicorn"
    assert options["core"]["hostname_callable"] == "mlwf_instance._net.loopback_hostname"
    from mlwf_instance._net import loopback_hostname

    assert loopback_hostname() == "127.0.0.1"


def test_task_log_files_and_folders_are_created_private(tmp_path: Path) -> None:
    """Issue 10 item 7: Airflow's file task handler is told to create log files 0600 and folders 0700 (its defaults are 0o664 and 0o775, whatever the umask)."""
    options = _config(tmp_path).airflow_options(SECRETS)
    assert options["logging"]["file_task_handler_new_file_permissions"] == "0o600"
    assert options["logging"]["file_task_handler_new_folder_permissions"] == "0o700"
