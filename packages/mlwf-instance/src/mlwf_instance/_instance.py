"""Instance: one Airflow instance from an InstanceSpec, run here as supervised child processes."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, quote_plus

import psutil
from mlwf_operators.processes import tail_file, terminate_trees

from mlwf_instance._api import get_api_token, get_health, unhealthy_components
from mlwf_instance._auth import auth_options, uses_mlwf_auth, write_auth_files
from mlwf_instance._broker import prepare_database_broker
from mlwf_instance._celery import PeriodicPurge, database_broker_url, purge_consumed_messages
from mlwf_instance._database import database_urls, ensure_database
from mlwf_instance._defaults import DefaultsContext, collect_defaults
from mlwf_instance._errors import (
    ComponentDiedError,
    HealthTimeoutError,
    MlwfInstanceError,
    PortInUseError,
    PortTakenError,
    UnknownComponentError,
)
from mlwf_instance._home import CONSTRUCTED_BUNDLE, Credentials, InstanceConfig, InstanceHome
from mlwf_instance._net import free_loopback_port, port_holders, tree_listens
from mlwf_instance._pidfile import PidFile, same_start
from mlwf_instance._spec import Api, DagFolder, InstanceSpec, default_home
from mlwf_instance._supervisor import Supervisor
from mlwf_instance._topology import (
    COMPONENTS,
    WORKER_PREFIX,
    check_airflow_config,
    dag_bundle_names,
    mysql_compat_paths,
    spec_options,
    worker_args,
    worker_names,
)

#: Extra arguments of the components run by the ``airflow`` CLI.
_COMPONENT_ARGS = {"scheduler": ("--skip-serve-logs",), "triggerer": ("--skip-serve-logs",)}
#: Health document key → the component whose log explains it.
_HEALTH_TO_COMPONENT = {"metadatabase": "api-server", "dag_processor": "dag-processor"}
#: Component → its key in the health document (the api-server has none: it serves the document).
_COMPONENT_TO_HEALTH = {
    "scheduler": "scheduler",
    "triggerer": "triggerer",
    "dag-processor": "dag_processor",
}
#: Timeout of ``airflow db migrate`` (≈8 s on a 2-core machine; first runs create every table).
MIGRATE_TIMEOUT = 300.0


def airflow_command(*args: str) -> list[str]:
    """Return the argv that runs the ``airflow`` CLI of this interpreter's environment."""
    return [sys.executable, "-m", "airflow", *args]


def api_server_command(log_port: int) -> list[str]:
    """Return the argv of the api-server, which also serves task logs on loopback ``log_port``."""
    return [sys.executable, "-m", "mlwf_instance._api_server", str(log_port)]


class Instance:
    """One Airflow instance described by an :class:`InstanceSpec`, run as supervised processes.

    ``start()`` claims the home, writes the configuration, checks (and, if allowed, creates)
    the metadata database, migrates it and starts the api-server (which also serves task logs on
    loopback), scheduler, dag-processor, triggerer and, with the Celery executor, ``worker-1`` …
    ``worker-N``;
    ``wait_healthy()`` blocks until all of them are healthy; ``stop()`` stops every process it
    started. As a context manager it does all three::

        with Instance(load_spec("team.json"), home=tmp_path / "home") as instance:
            token = instance.api_token()

    To test crash recovery, ``kill_component(name)`` SIGKILLs one component's process tree and
    ``restart_component(name)`` starts it again (see :attr:`components`).
    """

    def __init__(
        self,
        spec: InstanceSpec,
        *,
        home: str | Path | None = None,
        output: Callable[[str], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        """Describe the instance of ``spec``; nothing starts before :meth:`start`.

        The home is ``home``, else ``spec.home``, else ``default_home(spec.name)``. Secrets the
        spec refers to (database and broker passwords) are read now: SpecError names a missing
        one. ``airflow_config`` options the spec owns are refused (SpecError naming
        ``airflow_config.<section>.<key>``). ``output`` receives progress messages (never a
        secret); setting ``stop_event`` interrupts start-up and waits.
        """
        check_airflow_config(spec)
        self._setup(spec, home, output, stop_event, extra_config=spec.airflow_config)

    def _setup(
        self,
        spec: InstanceSpec,
        home: str | Path | None,
        output: Callable[[str], None] | None,
        stop_event: threading.Event | None,
        *,
        extra_config: Mapping[str, Mapping[str, str]],
        parallelism: int = 4,
        dag_refresh_interval: int = 10,
    ) -> None:
        self.spec = spec
        root = Path(home) if home is not None else spec.home or default_home(spec.name)
        self.home = InstanceHome(root.expanduser().resolve())
        password = spec.database.password.resolve() if spec.database.password else None
        #: The metadata database's Airflow URLs (they hold the password: print ``.display``).
        self.database = database_urls(
            spec.database.url, password=password, sqlite_file=self.home.database
        )
        broker_password = (
            spec.celery.broker_password.resolve() if spec.celery.broker_password else None
        )
        broker_spellings = (
            (broker_password, quote(broker_password, safe=""), quote_plus(broker_password))
            if broker_password
            else ()
        )
        bind_password = (
            spec.ldap.bind_password.resolve(where="ldap.bind_password")
            if spec.ldap is not None and spec.ldap.bind_password is not None
            else None
        )
        self._secrets = tuple(
            s for s in (*self.database.secrets, *broker_spellings, bind_password) if s
        )
        folders = [f.path.expanduser().resolve() for f in spec.dag_folders]
        names = dag_bundle_names(spec)
        options = spec_options(spec, self.database, broker_password)
        self._bind_password = bind_password
        #: The policy and bind password mlwf-auth reads (written at each start, mode 0600).
        self._auth_folder = self.home.root / "mlwf_auth"
        auth = auth_options(
            spec,
            bind_password_file=self._auth_folder / "ldap_bind_password",
            policy_file=self._auth_folder / "policy.json",
        )
        for section, values in auth.items():
            options.setdefault(section, {}).update(values)
        if spec.executor == "local":
            options["core"]["parallelism"] = str(parallelism)
        python_path = mysql_compat_paths(self.database)
        contributed = collect_defaults(
            DefaultsContext(
                name=spec.name,
                home=self.home.root,
                airflow_home=self.home.airflow_home,
                constructed_folder=self.home.constructed,
                constructed_bundle=CONSTRUCTED_BUNDLE,
                metrics_dir=self.home.metrics_dir,
                metrics_enabled=spec.metrics.enabled,
                executor=spec.executor,
                database_kind=self.database.kind,
                team=self.database.kind != "sqlite",
            )
        )
        self.config = InstanceConfig(
            home=self.home,
            dags_folder=folders[0],
            dags_bundle=names[0],
            extra_dag_folders=tuple(zip(names[1:], folders[1:], strict=True)),
            port=spec.api.port,
            host=spec.api.host,
            base_url=spec.api.base_url,
            parallelism=parallelism,
            dag_refresh_interval=dag_refresh_interval,
            database=None if self.database.kind == "sqlite" else self.database,
            spec_options=options,
            contributed_options=contributed.airflow_config,
            contributed_env=contributed.environment,
            python_path=python_path,
            extra_config=dict(extra_config),
        )
        self.config.airflow_options({"api_secret_key": "", "jwt_secret": "", "fernet_key": ""})
        #: Every supervised long-running component, in start order.
        self.components: tuple[str, ...] = (*COMPONENTS, *worker_names(spec))
        self._output = output or (lambda _message: None)
        self.supervisor = Supervisor(stop_event, watchdog_log=self.home.log_file("watchdog"))
        self._pid_file = PidFile(self.home.pid_file, self.home.root)
        self._started_at: datetime | None = None
        self._env: dict[str, str] | None = None
        #: Components killed with kill_component and not restarted yet.
        self._killed: set[str] = set()
        #: Restart time of each restarted component: only its newer heartbeats count as healthy.
        self._restarted_at: dict[str, datetime] = {}
        #: Size of each worker's log when it was (re)started: its "ready" line comes after.
        self._log_offsets: dict[str, int] = {}

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret of the instance (passwords) replaced by ``***``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    @property
    def url(self) -> str:
        """Base URL of the API server and UI."""
        return self.config.url

    @property
    def directory_login(self) -> bool:
        """Whether users log in with their directory account (mlwf-auth), not a generated password."""
        return uses_mlwf_auth(self.spec)

    @property
    def credentials(self) -> Credentials:
        """The admin username and the password SimpleAuthManager generated for this home.

        Raises MlwfInstanceError on an instance whose users log in with their directory
        account (``ldap`` in the spec): it has no generated password.
        """
        if self.directory_login:
            raise MlwfInstanceError(
                f"instance {self.spec.name!r} has no generated password: its users log in "
                "with their directory account (ldap in the spec)"
            )
        return self.home.read_credentials()

    def api_token(self) -> str:
        """Return a JWT for the REST API, logging in with :attr:`credentials`."""
        creds = self.credentials
        return get_api_token(self.url, creds.username, creds.password)

    def pids(self) -> set[int]:
        """Return the pids of every live process of the instance (children and descendants)."""
        return self.supervisor.all_pids()

    def start(self) -> None:
        """Claim the home, write configuration, migrate the database and start the components.

        Raises InstanceAlreadyRunningError, PortInUseError, ComponentDiedError (a failed
        migration or a component that exits at once) or StopRequested; on any failure every
        process started so far is stopped and the home is released.
        """
        if self._pid_file.held:
            raise MlwfInstanceError(f"instance on {self.home.root} is already started")
        self.home.create()
        self._pid_file.acquire()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._reap_stale()
        _check_port_free(self.config.host, self.config.port)
        secrets = self.home.load_or_create_secrets()
        if not self.directory_login:
            # Before the API server starts, or SimpleAuthManager generates it and logs it.
            self.home.ensure_credentials()
        write_auth_files(self.spec, self._auth_folder, self._bind_password)
        self.config.dags_folder.mkdir(parents=True, exist_ok=True)
        self._warn_old_constructed()
        # A free loopback port per start: two instances side by side never share a log server.
        configured = self.config.extra_config.get("logging", {}).get("worker_log_server_port")
        port = int(configured) if configured else free_loopback_port()
        self.config = dataclasses.replace(self.config, log_server_port=port)
        self.config.write_airflow_cfg(secrets)
        env = self.config.environment(secrets)
        folders = ", ".join(str(f) for f in self.config.dag_folders)
        self._output(f"home: {self.home.root} (DAGs: {folders})")
        if self.database.kind != "sqlite":
            self._output(f"checking the metadata database ({self.database.where()})…")
            if ensure_database(self.database, create=self.spec.database.create):
                self._output(f"created {self.database.where()}")
        self._output("migrating the metadata database…")
        migrate = self.supervisor.spawn(
            "db-migrate",
            airflow_command("db", "migrate"),
            env=env,
            log_path=self.home.log_file("db-migrate"),
            cwd=self.home.root,
        )
        code = self.supervisor.wait(migrate, timeout=MIGRATE_TIMEOUT)
        if code != 0:
            raise migrate.died()
        self.supervisor.forget(migrate)
        if self.spec.executor == "celery" and self.spec.celery.broker == "database":
            # Before any worker or the scheduler: kombu's own get-or-create races between them.
            prepare_database_broker(self.database.sync, self.spec.celery.queues)
            # kombu never deletes a message a worker fetched; such rows are dead weight, safe to
            # delete at any time (docs/mlwf-instance/celery.md): once per start keeps them few.
            purge_consumed_messages(database_broker_url(self.database.sync))
        # Heartbeats older than this belong to a previous run of the same home.
        self._started_at = datetime.now(UTC) - timedelta(seconds=1)
        self._env = env
        for name in self.components:
            self._spawn_component(name)
        self._pid_file.record(self.supervisor.records())

    def _warn_old_constructed(self) -> None:
        """Point at generated files an older mlwf up left in the DAGs folder (now in the home)."""
        old = self.config.dags_folder / "mlwf_constructed"
        if old.is_dir() and any(old.glob("instance__*.py")):
            self._output(
                f"warning: {old} holds generated DAG files of an older mlwf up; instances now "
                f"live in {self.home.constructed} (re-created from the store), so their DAGs "
                f"would be defined twice: delete {old}"
            )

    def _component_command(self, name: str) -> list[str]:
        if name == "api-server":
            assert self.config.log_server_port is not None  # chosen by _start
            return api_server_command(self.config.log_server_port)
        if name.startswith(WORKER_PREFIX):
            return airflow_command(*worker_args(self.spec, name))
        return airflow_command(name, *_COMPONENT_ARGS.get(name, ()))

    def _spawn_component(self, name: str) -> int:
        assert self._env is not None  # set by _start before any component starts
        self._output(f"starting {name}… (log: {self.home.log_file(name)})")
        log = self.home.log_file(name)
        self._log_offsets[name] = log.stat().st_size if log.exists() else 0
        child = self.supervisor.spawn(
            name,
            self._component_command(name),
            env=self._env,
            log_path=self.home.log_file(name),
            cwd=self.home.root,
        )
        return child.pid

    def _reap_stale(self) -> None:
        """Stop processes a killed predecessor on this home recorded and left running."""
        leftovers = []
        for record in self._pid_file.stale_processes:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(record.pid)
                if same_start(record.create_time, proc.create_time()):
                    leftovers.append(proc)
        if leftovers:
            self._output(f"stopping {len(leftovers)} process(es) left by a previous mlwf up…")
            terminate_trees(leftovers, grace=10.0)

    def check_running(self) -> None:
        """Raise ComponentDiedError if any component has exited (a killed one is not checked)."""
        self.supervisor.check()

    def _check_component(self, name: str) -> None:
        """Raise unless ``name`` is a component and the instance is started."""
        if name not in self.components:
            raise UnknownComponentError(name, self.components)
        if self._started_at is None:
            raise MlwfInstanceError(f"instance on {self.home.root} is not started")

    def kill_component(self, name: str) -> list[int]:
        """SIGKILL one component's whole process tree at once, as a crash would; return the pids.

        ``name`` is one of :attr:`components` (else UnknownComponentError). No process of the
        tree may clean up: with LocalExecutor the scheduler's tree holds the executor's workers
        and the task processes they run, so killing the scheduler also kills running tasks. The
        tree is reaped. Until :meth:`restart_component`, the component counts as deliberately
        down: :meth:`check_running` and :meth:`run_until_stopped` do not report it as died.
        Killing a component that is already down returns ``[]``.
        """
        self._check_component(name)
        child = self.supervisor.find(name)
        killed = [] if child is None else self.supervisor.kill(child)
        self._killed.add(name)
        self._restarted_at.pop(name, None)
        self._pid_file.record(self.supervisor.records())
        self._output(f"killed {name} ({len(killed)} process(es))")
        return sorted(p.pid for p in killed)

    def restart_component(self, name: str) -> int:
        """Start one component again, killing it first (SIGKILL) if it still runs; return its pid.

        ``name`` is one of :attr:`components`. The component gets the same command, environment
        and log file as at :meth:`start`. :meth:`wait_healthy` then counts only its heartbeats
        from after the restart, so it waits for the new process, not the killed one's last beat.
        """
        self._check_component(name)
        if self.supervisor.find(name) is not None:
            self.kill_component(name)
        # Every process of the killed tree is gone: any heartbeat from now on is the new one's.
        self._restarted_at[name] = datetime.now(UTC)
        pid = self._spawn_component(name)
        self._killed.discard(name)
        self._pid_file.record(self.supervisor.records())
        return pid

    @property
    def killed_components(self) -> frozenset[str]:
        """The components killed with :meth:`kill_component` and not restarted since."""
        return frozenset(self._killed)

    def unready_workers(self) -> list[str]:
        """Return the Celery workers that have not logged ``<name>@<host> ready.`` since their start.

        Celery logs that line once the worker is connected to its broker and consumes its
        queues; Airflow's health document knows nothing of workers, and ``celery inspect ping``
        takes seconds per call (and needs a broadcast-capable broker).
        """
        waiting = []
        for name in self.components:
            if not name.startswith(WORKER_PREFIX) or name in self._killed:
                continue
            if not _logged_ready(self.home.log_file(name), name, self._log_offsets.get(name, 0)):
                waiting.append(name)
        return waiting

    def wait_healthy(self, timeout: float = 180.0) -> None:
        """Block until ``/api/v2/monitor/health`` reports every component healthy.

        The document counts only once the api-server's process tree listens on the API port:
        the port is checked free at :meth:`start`, long before the api-server binds it, and
        any Airflow api-server that took it meanwhile would answer for ours. With the Celery
        executor it also waits until every worker has logged that it is ready (see
        :meth:`unready_workers`).

        Raises ComponentDiedError when a component exits meanwhile (PortTakenError when the
        api-server exits while another process listens on its port), HealthTimeoutError
        (naming the unhealthy components, with the tails of their logs) after ``timeout``
        seconds and StopRequested when the stop event is set.
        """
        if self._started_at is None:
            raise MlwfInstanceError(f"instance on {self.home.root} is not started")
        self._output(f"waiting for {self.url}/api/v2/monitor/health to report healthy…")
        deadline = time.monotonic() + timeout
        bad: list[str] = []
        while True:
            self._check_running_or_port_taken()
            listening = self._api_server_listens()
            health = get_health(self.url, timeout=5.0) if listening else None
            bad = unhealthy_components(
                health,
                since=self._started_at,
                since_by_component={
                    _COMPONENT_TO_HEALTH[name]: at
                    for name, at in self._restarted_at.items()
                    if name in _COMPONENT_TO_HEALTH
                },
            )
            if health is not None:
                bad += self.unready_workers()
            if not bad:
                return
            if time.monotonic() > deadline:
                break
            self.supervisor.sleep(1.0)
        culprits = {_HEALTH_TO_COMPONENT.get(name, name) for name in bad}
        logs = "\n".join(
            f"--- {self.home.log_file(name)}\n{tail_file(self.home.log_file(name), 15)}"
            for name in self.components
            if name in culprits
        )
        down = (
            f" (killed and not restarted: {', '.join(sorted(self._killed))})"
            if self._killed
            else ""
        )
        holder = "" if listening else self._foreign_port_holder()
        taken = (
            f"; port {self.config.port} is held by {holder}, not by the api-server"
            if holder
            else ""
        )
        raise HealthTimeoutError(
            self.mask(
                f"instance at {self.url} not healthy after {timeout:.0f} s; unhealthy: "
                f"{', '.join(bad)}{down}{taken}\n{logs}"
            )
        )

    def _api_server_listens(self) -> bool:
        """Return whether the api-server's process tree listens on the API port."""
        child = self.supervisor.find("api-server")
        if child is None or child.process is None:
            return False
        return tree_listens(child.process, self.config.port)

    def _foreign_port_holder(self) -> str:
        """Describe the process, not one of ours, listening on the API port ("" if none)."""
        holders = port_holders(self.config.port, exclude=self.pids())
        if not holders:
            return ""
        pid = holders[-1]
        return "another process" if pid is None else f"another process (pid {pid})"

    def _check_running_or_port_taken(self) -> None:
        """Like :meth:`check_running`, with PortTakenError for an api-server whose port was taken."""
        try:
            self.check_running()
        except ComponentDiedError as err:
            if err.name != "api-server":
                raise
            holders = port_holders(self.config.port, exclude=self.pids())
            if not holders:
                raise
            raise PortTakenError(
                err.name,
                err.returncode,
                err.log_path,
                err.log_tail,
                host=self.config.host,
                port=self.config.port,
                pid=holders[-1],
            ) from None

    def run_until_stopped(self, poll_interval: float = 1.0) -> None:
        """Block while every component runs; return when the stop event is set.

        Raises ComponentDiedError when a component exits on its own. On the database broker,
        consumed messages are purged every ``_celery.PURGE_INTERVAL`` s meanwhile.
        """
        purge = None
        if self.spec.executor == "celery" and self.spec.celery.broker == "database":
            purge = PeriodicPurge(
                database_broker_url(self.database.sync), output=self._output, mask=self.mask
            )
        while not self.supervisor.stop_event.is_set():
            self.check_running()
            if purge is not None:
                purge.tick()
            self.supervisor.stop_event.wait(poll_interval)

    def stop(self, grace: float = 10.0) -> int:
        """Stop every process (SIGTERM, SIGKILL after ``grace`` s) and release the home.

        Idempotent. Returns how many processes needed SIGKILL.
        """
        try:
            killed = self.supervisor.stop(grace=grace)
        finally:
            # Airflow wrote files after start (e.g. airflow.db, with the umask its parent had
            # when created by an older mlwf): keep them private.
            with contextlib.suppress(OSError):
                self.home.secure()
            self._pid_file.release()
            self._started_at = None
            self._killed.clear()
            self._restarted_at.clear()
        return len(killed)

    def __enter__(self) -> Self:
        """Start the instance and wait until it is healthy."""
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the instance."""
        self.stop()


def _check_port_free(host: str, port: int) -> None:
    """Raise PortInUseError if ``host:port`` cannot be bound (the API server would die later).

    Any other failure to bind (an address of no interface here, a name that does not resolve)
    is a MlwfInstanceError naming the address, not a traceback.
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except OSError as err:
        raise MlwfInstanceError(f"API host {host!r} does not resolve: {err}") from err
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise PortInUseError(host, port) from err
            raise MlwfInstanceError(
                f"cannot listen on {host} port {port} (api.host, api.port): {err.strerror}"
            ) from err


def _logged_ready(log: Path, name: str, offset: int) -> bool:
    """Return whether Celery worker ``name`` wrote its ``ready.`` line into ``log`` after ``offset``."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return False
    return re.search(rf"\b{re.escape(name)}@\S+ ready\.", text) is not None


class EmbeddedInstance(Instance):
    """The laptop instance: SQLite, LocalExecutor, SimpleAuthManager, all mlwf packages.

    Same as ``Instance(laptop spec)`` with the DAGs folder, port and Airflow overrides given
    directly (``extra_config`` may override any option, unlike a spec's ``airflow_config``)::

        with EmbeddedInstance(tmp_path / "home", dags_folder=dags, port=free_port()) as instance:
            token = instance.api_token()
    """

    def __init__(
        self,
        home: str | Path,
        *,
        dags_folder: str | Path | None = None,
        port: int = 8080,
        extra_config: Mapping[str, Mapping[str, str]] | None = None,
        parallelism: int = 4,
        dag_refresh_interval: int = 10,
        output: Callable[[str], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        """Describe an instance; nothing starts before :meth:`start`.

        ``home`` is created if missing; ``dags_folder`` defaults to ``<home>/dags``;
        ``extra_config`` maps Airflow sections to options, e.g. ``{"mlwf_types": {"mode": "error"}}``
        (→ ``AIRFLOW__MLWF_TYPES__MODE=error``) and wins over the instance defaults; ``output``
        receives progress messages; setting ``stop_event`` interrupts start-up and waits.
        """
        root = Path(home).expanduser().resolve()
        folder = root / "dags" if dags_folder is None else Path(dags_folder)
        spec = InstanceSpec(
            name="laptop",
            dag_folders=[DagFolder(path=folder.expanduser().resolve())],
            api=Api(port=port),
        )
        self._setup(
            spec,
            root,
            output,
            stop_event,
            extra_config=extra_config or {},
            parallelism=parallelism,
            dag_refresh_interval=dag_refresh_interval,
        )
