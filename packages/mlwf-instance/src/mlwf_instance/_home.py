"""The instance home: its directory layout, generated secrets and Airflow configuration.

An instance home (``.mlwf/`` by default) holds everything one embedded instance owns::

    <home>/
        secrets.json                          API secret key, JWT secret, Fernet key (mode 0600)
        simple_auth_manager_passwords.json    written by Airflow's SimpleAuthManager (admin password)
        mlwf-up.pid                           pid file of the running ``mlwf up`` (locked while alive)
        logs/<component>.log                  stdout+stderr of each supervised process
        metrics/                              mlwf-stats-bridge's per-process metric files
        dags/                                 default DAGs folder when none is given
        airflow/                              AIRFLOW_HOME: airflow.cfg, airflow.db, task logs
        airflow/mlwf/mlflow.db                MLflow tracking + model registry store of the default
                                              ``mlwf_mlflow_default`` connection (see below)

The configuration is handed to every child process as ``AIRFLOW__SECTION__KEY`` environment
variables (the highest-precedence source in Airflow) and also written to ``airflow/airflow.cfg``
so that a plain ``AIRFLOW_HOME=<home>/airflow airflow ...`` command sees the same instance.

No MLflow server runs: unless the environment already defines it, every child gets
``AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT`` with tracking URI ``sqlite:///<home>/airflow/mlwf/mlflow.db``,
which the MLflow client opens directly (this needs the full ``mlflow`` package, not only
``mlflow-skinny``).
"""

from __future__ import annotations

import base64
import configparser
import io
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlwf_instance._errors import CredentialsUnavailableError, InvalidConfigError

#: The single user of the embedded instance; SimpleAuthManager syntax ``name:role``.
ADMIN_USERNAME = "admin"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)

_CONFIG_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Credentials:
    """A username and password for the instance's API and UI."""

    username: str
    password: str


@dataclass(frozen=True)
class InstanceHome:
    """The directory layout of one instance home; creates nothing until :meth:`create` is called."""

    root: Path

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME of the instance."""
        return self.root / "airflow"

    @property
    def airflow_cfg(self) -> Path:
        """The ``airflow.cfg`` written for the instance."""
        return self.airflow_home / "airflow.cfg"

    @property
    def database(self) -> Path:
        """The SQLite metadata database file."""
        return self.airflow_home / "airflow.db"

    @property
    def logs(self) -> Path:
        """Directory of the supervised processes' log files."""
        return self.root / "logs"

    @property
    def default_dags_folder(self) -> Path:
        """DAGs folder used when none is given."""
        return self.root / "dags"

    @property
    def secrets_file(self) -> Path:
        """JSON file of the generated secrets, stable across restarts."""
        return self.root / "secrets.json"

    @property
    def passwords_file(self) -> Path:
        """SimpleAuthManager's passwords file (``[core] simple_auth_manager_passwords_file``)."""
        return self.root / "simple_auth_manager_passwords.json"

    @property
    def pid_file(self) -> Path:
        """Pid file of the ``mlwf up`` process running on this home."""
        return self.root / "mlwf-up.pid"

    @property
    def metrics_dir(self) -> Path:
        """PROMETHEUS_MULTIPROC_DIR of every process: mlwf-stats-bridge writes metrics here."""
        return self.root / "metrics"

    @property
    def mlflow_database(self) -> Path:
        """SQLite MLflow tracking/registry store of the default ``mlwf_mlflow_default`` connection."""
        return self.airflow_home / "mlwf" / "mlflow.db"

    def log_file(self, component: str) -> Path:
        """Return the log file of one supervised component."""
        return self.logs / f"{component}.log"

    def create(self) -> None:
        """Create the home's directories (idempotent)."""
        for directory in (
            self.root,
            self.airflow_home,
            self.logs,
            self.metrics_dir,
            self.mlflow_database.parent,
        ):
            directory.mkdir(parents=True, exist_ok=True)

    def load_or_create_secrets(self) -> dict[str, str]:
        """Return the home's secrets, generating and storing them (mode 0600) on first use."""
        if self.secrets_file.exists():
            try:
                stored = json.loads(self.secrets_file.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise InvalidConfigError(
                    f"cannot read secrets file {self.secrets_file}: {err}; delete it to generate new "
                    f"secrets (existing sessions and encrypted connections become invalid)"
                ) from err
            if isinstance(stored, dict) and all(
                isinstance(stored.get(k), str) for k in _SECRET_NAMES
            ):
                return {k: str(stored[k]) for k in _SECRET_NAMES}
            raise InvalidConfigError(
                f"secrets file {self.secrets_file} lacks one of {', '.join(_SECRET_NAMES)}; "
                f"delete it to generate new secrets"
            )
        generated = {
            "api_secret_key": secrets.token_urlsafe(32),
            "jwt_secret": secrets.token_urlsafe(48),
            # Same format as cryptography's Fernet.generate_key().
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"),
        }
        _write_private(self.secrets_file, json.dumps(generated, indent=2) + "\n")
        return generated

    def read_credentials(self, username: str = ADMIN_USERNAME) -> Credentials:
        """Return the password SimpleAuthManager generated for ``username``."""
        try:
            passwords = json.loads(self.passwords_file.read_text() or "{}")
        except FileNotFoundError as err:
            raise CredentialsUnavailableError(
                f"passwords file {self.passwords_file} does not exist yet; the API server writes it "
                f"when it starts"
            ) from err
        except (OSError, json.JSONDecodeError) as err:
            raise CredentialsUnavailableError(
                f"cannot read passwords file {self.passwords_file}: {err}"
            ) from err
        password = passwords.get(username) if isinstance(passwords, dict) else None
        if not isinstance(password, str):
            raise CredentialsUnavailableError(
                f"passwords file {self.passwords_file} holds no password for user {username!r}"
            )
        return Credentials(username=username, password=password)


_SECRET_NAMES = ("api_secret_key", "jwt_secret", "fernet_key")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class InstanceConfig:
    """What distinguishes one embedded instance: where it lives, its DAGs, port and overrides."""

    home: InstanceHome
    dags_folder: Path
    port: int = 8080
    host: str = "127.0.0.1"
    parallelism: int = 4
    dag_refresh_interval: int = 10
    extra_config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of the API server (and UI)."""
        return f"http://{self.host}:{self.port}"

    def airflow_options(self, secrets_: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """Return the instance's Airflow configuration as ``{section: {key: value}}``."""
        options: dict[str, dict[str, str]] = {
            "core": {
                "dags_folder": str(self.dags_folder),
                "executor": "LocalExecutor",
                # LocalExecutor pre-forks this many workers; Airflow's 32 is far too many for a laptop.
                "parallelism": str(self.parallelism),
                "load_examples": "False",
                "auth_manager": SIMPLE_AUTH_MANAGER,
                "simple_auth_manager_users": f"{ADMIN_USERNAME}:admin",
                "simple_auth_manager_all_admins": "False",
                "simple_auth_manager_passwords_file": str(self.home.passwords_file),
                "fernet_key": secrets_["fernet_key"],
                # Derived from [api] base_url otherwise; explicit so workers never guess the port.
                "execution_api_server_url": f"{self.url}/execution/",
            },
            "database": {"sql_alchemy_conn": f"sqlite:///{self.home.database}"},
            "api": {
                "host": self.host,
                "port": str(self.port),
                "base_url": self.url,
                "secret_key": secrets_["api_secret_key"],
            },
            "api_auth": {"jwt_secret": secrets_["jwt_secret"]},
            # New DAG files appear after refresh_interval (300 s by default): too slow for development.
            "dag_processor": {"refresh_interval": str(self.dag_refresh_interval)},
            "logging": {"base_log_folder": str(self.home.airflow_home / "logs")},
            # mlwf-stats-bridge: metrics into Prometheus files under <home>/metrics, served by the
            # API server at /mlwf-stats-bridge/metrics (authenticated).
            "metrics": {
                "statsd_on": "True",
                "statsd_custom_client_path": "mlwf_stats_bridge.PrometheusStatsClient",
            },
        }
        for section, values in self.extra_config.items():
            _check_config_name(section, "section")
            for key, value in values.items():
                _check_config_name(key, f"key in section [{section}]")
                if not isinstance(value, str):
                    raise InvalidConfigError(
                        f"value of [{section}] {key} must be a string, got {type(value).__name__}"
                    )
                options.setdefault(section.lower(), {})[key.lower()] = value
        return options

    def environment(
        self, secrets_: Mapping[str, str], base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Return the environment of every child process: ``base`` plus the instance's config."""
        env = dict(os.environ if base is None else base)
        # A test session's unit-test mode must not leak in: Airflow would then ignore airflow.cfg
        # and load its unit-test defaults. Other inherited AIRFLOW__* options pass through.
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        env["AIRFLOW_HOME"] = str(self.home.airflow_home)
        env["AIRFLOW_CONFIG"] = str(self.home.airflow_cfg)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.home.metrics_dir)
        for section, values in self.airflow_options(secrets_).items():
            for key, value in values.items():
                env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = value
        # MLflow without a server: a connection the user set (env var) wins over this default.
        env.setdefault(
            "AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT",
            json.dumps(
                {"conn_type": "mlwf_mlflow", "host": f"sqlite:///{self.home.mlflow_database}"}
            ),
        )
        return env

    def write_airflow_cfg(self, secrets_: Mapping[str, str]) -> Path:
        """Write the instance's ``airflow.cfg`` (mode 0600: it holds the secrets) and return its path."""
        parser = configparser.ConfigParser(interpolation=None)
        for section, values in sorted(self.airflow_options(secrets_).items()):
            parser[section] = dict(sorted(values.items()))
        buffer = io.StringIO("# Written by mlwf up on every start; edits are overwritten.\n")
        buffer.seek(0, io.SEEK_END)
        parser.write(buffer)
        _write_private(self.home.airflow_cfg, buffer.getvalue())
        return self.home.airflow_cfg


def _check_config_name(name: object, what: str) -> None:
    """Reject names that cannot appear in an ``AIRFLOW__SECTION__KEY`` variable."""
    if not isinstance(name, str) or not _CONFIG_NAME.match(name) or "__" in name:
        raise InvalidConfigError(
            f"invalid Airflow config {what}: {name!r} (letters, digits and single underscores only)"
        )
