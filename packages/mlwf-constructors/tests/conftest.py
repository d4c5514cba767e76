"""A real Airflow API server (its own app under uvicorn, as ``airflow api-server`` runs it) for API tests.

One server per session, in a child process with its own AIRFLOW_HOME (SQLite): ``[core]
multi_team`` on, the ``dags-folder`` bundle owned by team ``team_a``, the test auth manager
:class:`restricted_auth.RestrictedAuthManager`, the constructors of ``sample_constructors``, and a
DAG file defining ``existing_dag``, ``dev_pipeline`` and ``prod_pipeline`` parsed into Airflow's DAG
table, and a second bundle ``team-b-folder`` (team ``team_b``) whose file defines ``team_b_dag``. Users: ``admin`` (admin),
``alice`` (user, team_a), ``carol`` (user, team_b), ``vic`` (viewer, team_a).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
PREFIX = "/mlwf/constructors"
USERS = {"admin": "admin", "alice": "user:team_a", "carol": "user:team_b", "vic": "viewer:team_a"}

RUNNER = """
import sys
from airflow.utils.db import initdb
initdb()
from airflow.models.team import Team
from airflow.utils.session import create_session
with create_session() as session:
    session.add_all([Team(name="team_a"), Team(name="team_b")])
# What `airflow dags reserialize` does: register the bundles (and their teams), parse the folder.
from airflow.dag_processing.bundles.base import unpack_bundle_version
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
manager = DagBundlesManager()
with create_session() as session:
    manager.sync_bundles_to_db(session=session)
with create_session() as session:
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        version, data = unpack_bundle_version(bundle.get_current_version(), bundle)
        sync_bag_to_db(bag, bundle.name, bundle_version=version, version_data=data, session=session)
import socket
import uvicorn
# The fixture's listening socket, inherited as fd sys.argv[1]: no other process can hold the port.
# (Not uvicorn.run(fd=...): uvicorn wraps an fd as an AF_UNIX socket.)
listener = socket.socket(fileno=int(sys.argv[1]))
config = uvicorn.Config("airflow.api_fastapi.main:app", workers=1, access_log=False, log_config=None)
uvicorn.Server(config).run(sockets=[listener])
"""

EXISTING_DAG = """
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

for dag_id in ["existing_dag", "dev_pipeline", "prod_pipeline"]:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        EmptyOperator(task_id="a")
"""

TEAM_B_DAG = """
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("team_b_dag", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
    EmptyOperator(task_id="a")
"""


@dataclass
class ApiServer:
    """The running server: its URL, the DAG folder and a token per user."""

    url: str
    dags: Path
    root: Path = Path()
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: str | None = None, **kwargs: object) -> httpx.Client:
        """Return a client of the constructors API, authenticated by Bearer token as ``user``."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(
            base_url=f"{self.url}{PREFIX}",
            headers=headers,
            timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )

    def cookie_client(self, user: str, **headers: str) -> httpx.Client:
        """Return a client authenticated as a browser is: the ``_token`` cookie, extra headers."""
        return httpx.Client(
            base_url=f"{self.url}{PREFIX}",
            cookies={"_token": self.tokens[user]},
            headers=headers,
            timeout=60,
        )


def _server_env(home: Path, dags: Path) -> dict[str, str]:
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(dags)},
            "team_name": "team_a",
        },
        {
            "name": "team-b-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(dags.parent / "dags_b")},
            "team_name": "team_b",
        },
    ]
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({name: f"pw-{name}" for name in USERS}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__MULTI_TEAM": "True",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "AIRFLOW__CORE__AUTH_MANAGER": "restricted_auth.RestrictedAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:{role}" for name, role in USERS.items()
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "constructors-api-tests",
            "AIRFLOW__API__SECRET_KEY": "constructors-api-tests",
            "AIRFLOW__MLWF_CONSTRUCTORS__BUNDLE_MODULES": "sample_constructors",
            "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
        }
    )
    return env


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Start the server once for the session; stop it (by PID) at the end."""
    root = tmp_path_factory.mktemp("api-server")
    home, dags = root / "home", root / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "existing.py").write_text(textwrap.dedent(EXISTING_DAG))
    (root / "dags_b").mkdir()
    (root / "dags_b" / "team_b.py").write_text(textwrap.dedent(TEAM_B_DAG))
    # The server listens on a socket bound here and handed down, not on a free_port() it binds
    # itself: another xdist worker's server (same users, passwords and JWT secret) could take
    # that port first and answer every request for this one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        log = (root / "server.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(listener.fileno())],
            env=_server_env(home, dags),
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    server = ApiServer(f"http://127.0.0.1:{port}", dags, root)
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"api server exited {proc.returncode}:\n{_tail(root / 'server.log')}")
            try:
                if httpx.get(f"{server.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"api server did not answer in 240 s:\n{_tail(root / 'server.log')}")
            time.sleep(0.5)
        for name in USERS:
            response = httpx.post(
                f"{server.url}/auth/token",
                json={"username": name, "password": f"pw-{name}"},
                timeout=30,
            )
            assert response.status_code == 201, response.text
            server.tokens[name] = response.json()["access_token"]
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:]
