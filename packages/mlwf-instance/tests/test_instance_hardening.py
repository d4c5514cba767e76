"""Review fixes of the team-instance runtime: owned options, password masking, bind errors, cfg escaping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_instance._database import database_urls
from mlwf_instance._errors import MlwfInstanceError
from mlwf_instance._home import InstanceConfig, InstanceHome
from mlwf_instance._instance import _check_port_free
from mlwf_instance._spec import SpecError, parse_spec
from mlwf_instance._topology import check_airflow_config


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("core", "simple_auth_manager_all_admins"),
        ("core", "simple_auth_manager_users"),
        ("celery", "celery_config_options"),
        ("logging", "worker_log_server_port"),
        ("operators", "default_queue"),
        ("CORE", "Executor_cmd"),
        ("api", "server_type"),
    ],
)
def test_validation_refuses_every_option_the_runtime_owns(section: str, key: str) -> None:
    """Issue 11: validate (and so render) refuses the same owned options as `up`, e.g. the one making every user an admin."""
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "team-a", "airflow_config": {section: {key: "x"}}})
    assert f"airflow_config.{section}.{key}" in str(caught.value)


def test_runtime_check_uses_the_same_table() -> None:
    """Issue 11: the runtime's check names the field that owns an option, like validation does."""
    spec = parse_spec(
        {"name": "team-a", "airflow_config": {"scheduler": {"parsing_processes": "2"}}}
    )
    check_airflow_config(spec)  # an option nobody owns passes


@pytest.mark.parametrize("password", ["p+ss@1", "my pass:1", "a%b/c d+e"])
def test_database_password_never_shows_in_display_or_masked_urls(password: str) -> None:
    """Issue 11: however SQLAlchemy quotes a password into the URL, printed forms show *** instead."""
    urls = database_urls("postgresql://bob@db/x", password=password, sqlite_file=Path("/x"))
    for text in (urls.display, urls.mask(urls.sync), urls.mask(urls.async_)):
        assert "***" in text
        rest = text.split("@", 1)[0]
        assert rest.endswith(":***"), text


@pytest.mark.parametrize("host", ["10.254.254.254", "no-such-host.invalid"])
def test_an_api_host_that_cannot_be_bound_is_an_error_not_a_traceback(host: str) -> None:
    """Issue 11: api.host that names no local interface or does not resolve raises MlwfInstanceError naming it."""
    with pytest.raises(MlwfInstanceError, match=host.replace(".", r"\.")):
        _check_port_free(host, 18089)


def test_written_airflow_cfg_keeps_percent_signs_literal(tmp_path: Path) -> None:
    """Issue 11: airflow.cfg escapes %, so Airflow reads a quoted password or a log format back unchanged."""
    home = InstanceHome(tmp_path / "home")
    home.create()
    config = InstanceConfig(
        home=home,
        dags_folder=tmp_path,
        extra_config={
            "logging": {"log_format": "[%(asctime)s] %(message)s"},
            "database": {"sql_alchemy_conn": "sqlite:////tmp/p%40ss.db"},
        },
    )
    config.write_airflow_cfg(
        {"api_secret_key": "a" * 8, "jwt_secret": "b" * 8, "fernet_key": "c" * 8}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {"AIRFLOW_CONFIG": str(home.airflow_cfg), "AIRFLOW_HOME": str(home.airflow_home)}
    code = (
        "from airflow.configuration import conf; "
        "print(conf.get('database', 'sql_alchemy_conn')); print(conf.get('logging', 'log_format'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-2:] == ["sqlite:////tmp/p%40ss.db", "[%(asctime)s] %(message)s"]
