"""``--target local``: what ``mlwf instance up SPEC`` runs on this machine, written out.

``airflow.cfg`` (no secret in it: each secret-bearing option is an Airflow ``<key>_cmd`` option
reading a file under ``<home>/secrets/``), ``instance.env`` (the environment of every process)
and ``processes.json`` (each process's command line, in start order). The secret files are
written by ``mlwf instance up`` (from the spec's secret references and the home's generated
keys), mode 0600; render never reads a secret.
"""

from __future__ import annotations

import configparser
import io
import json
import shlex
from pathlib import Path

from mlwf_instance._database import database_urls, sqlite_url
from mlwf_instance._instance import _COMPONENT_ARGS, airflow_command, api_server_command
from mlwf_instance._net import http_url
from mlwf_instance._render_model import (
    CONSTRUCTED_BUNDLE,
    LDAP_BIND,
    METADATA,
    RenderedFile,
    dag_bundles,
    needed_secrets,
)
from mlwf_instance._render_options import Layout, airflow_options, environment, secret_options
from mlwf_instance._spec import InstanceSpec, default_home
from mlwf_instance._topology import (
    COMPONENTS,
    mysql_compat_paths,
    worker_args,
    worker_names,
)

PRIVATE = 0o600


def home_of(spec: InstanceSpec) -> Path:
    """Return the instance's home: the spec's ``home`` or ``$XDG_STATE_HOME/mlwf/NAME``."""
    return spec.home if spec.home is not None else default_home(spec.name)


def local_layout(spec: InstanceSpec) -> Layout:
    """Return where the local instance's files live: its home, the spec's own DAG folders."""
    home = home_of(spec)
    host = spec.api.host
    return Layout(
        home=str(home),
        airflow_home=str(home / "airflow"),
        bundles=tuple((b, b.source) for b in dag_bundles(spec)),
        constructed=str(home / "constructed"),
        passwords_file=str(home / "simple_auth_manager_passwords.json"),
        metrics_dir=str(home / "metrics"),
        api_host=host,
        api_port=spec.api.port,
        api_url=http_url(host, spec.api.port),
        # Task and triggerer log URLs name the loopback log server (as `mlwf instance up`).
        hostname_callable="mlwf_instance._net.loopback_hostname",
        ldap_bind_password_file=str(home / "secrets" / LDAP_BIND.local),
        local_files=True,
    )


def local_options(spec: InstanceSpec) -> dict[str, dict[str, str]]:
    """Return the local ``airflow.cfg`` options: secrets as ``_cmd`` options reading files."""
    home = home_of(spec)
    options = airflow_options(spec, local_layout(spec))
    for option in secret_options(spec):
        if option.secret is METADATA and spec.database.kind == "sqlite":
            options.setdefault("database", {})["sql_alchemy_conn"] = sqlite_url(
                home / "airflow" / "airflow.db"
            )
            continue
        path = home / "secrets" / option.secret.local
        options.setdefault(option.section, {})[f"{option.key}_cmd"] = shlex.join(["cat", str(path)])
    return options


def _airflow_cfg(spec: InstanceSpec) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    for section, values in sorted(local_options(spec).items()):
        # Airflow reads airflow.cfg with %-interpolation: a literal % is written %%.
        parser[section] = {k: v.replace("%", "%%") for k, v in sorted(values.items())}
    buffer = io.StringIO()
    buffer.write(
        f"# airflow.cfg of mlwf instance {spec.name!r} as `mlwf instance up` runs it here.\n"
        "# No secret in it: each *_cmd option reads a file that `mlwf instance up` writes (0600;\n"
        "# the value without a trailing newline: Airflow keeps a command's output as it is).\n"
    )
    parser.write(buffer)
    return buffer.getvalue()


def _environment(spec: InstanceSpec) -> dict[str, str]:
    layout = local_layout(spec)
    env = environment(spec, layout)
    env["AIRFLOW_CONFIG"] = f"{layout.airflow_home}/airflow.cfg"
    database = database_urls(spec.database.url, password=None, sqlite_file=Path(layout.home))
    compat = [str(p) for p in mysql_compat_paths(database)]
    env["PYTHONPATH"] = ":".join(p for p in (env["PYTHONPATH"], *compat) if p)
    return env


def _processes(spec: InstanceSpec) -> list[dict[str, object]]:
    processes: list[dict[str, object]] = [
        {"name": "db-migrate", "argv": airflow_command("db", "migrate"), "once": True}
    ]
    for name in COMPONENTS:
        if name == "api-server":
            argv = api_server_command(0)
            argv[-1] = "<a free loopback port for task logs, picked at each start>"
        else:
            argv = airflow_command(name, *_COMPONENT_ARGS.get(name, ()))
        processes.append({"name": name, "argv": argv})
    for name in worker_names(spec):
        processes.append({"name": name, "argv": airflow_command(*worker_args(spec, name))})
    return processes


def render_local(spec: InstanceSpec) -> list[RenderedFile]:
    """Return the files of ``--target local``: airflow.cfg, instance.env, processes.json."""
    env = "".join(f"{key}={shlex.quote(value)}\n" for key, value in _environment(spec).items())
    secrets = [
        f"#   {home_of(spec) / 'secrets' / option.secret.local}: {option.secret.holds}"
        for option in secret_options(spec)
        if not (option.secret is METADATA and spec.database.kind == "sqlite")
    ]
    if LDAP_BIND in needed_secrets(spec):
        secrets.append(f"#   {home_of(spec) / 'secrets' / LDAP_BIND.local}: {LDAP_BIND.holds}")
    header = (
        f"# Environment of every process of mlwf instance {spec.name!r}. Secret files read by\n"
        "# airflow.cfg's *_cmd options (written by `mlwf instance up`, mode 0600):\n"
        + "\n".join(secrets)
        + "\n"
    )
    processes = {
        "instance": spec.name,
        "home": str(home_of(spec)),
        "constructed_bundle": CONSTRUCTED_BUNDLE,
        "processes": _processes(spec),
    }
    return [
        RenderedFile("airflow.cfg", _airflow_cfg(spec), PRIVATE),
        RenderedFile("instance.env", header + env, PRIVATE),
        RenderedFile("processes.json", json.dumps(processes, indent=2) + "\n"),
    ]
