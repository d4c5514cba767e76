"""``mlwf instance up|status|down SPEC``: run a spec's instance here, look at it, stop it.

``up`` runs in the foreground until Ctrl-C, SIGTERM or SIGHUP, like ``mlwf up`` (which is the
same code path on the packaged laptop spec, see :func:`run_foreground`). ``status`` and
``down`` find the running ``up`` through the home's pid file (locked while its owner lives).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import psutil

from mlwf_instance._console import write
from mlwf_instance._errors import ComponentDiedError, MlwfInstanceError
from mlwf_instance._home import InstanceHome
from mlwf_instance._net import http_url
from mlwf_instance._pidfile import read_owner, same_start
from mlwf_instance._spec import InstanceSpec, SpecError, default_home, load_spec, parse_spec
from mlwf_instance._supervisor import StopRequested

if TYPE_CHECKING:
    from mlwf_instance._instance import Instance

#: Exit codes of ``mlwf instance status``.
STATUS_HEALTHY, STATUS_DEGRADED, STATUS_NOT_RUNNING = 0, 1, 3
#: Seconds ``mlwf instance down`` waits for the instance to stop.
DOWN_TIMEOUT = 120.0


def laptop_spec() -> InstanceSpec:
    """Return the packaged laptop spec (``mlwf_instance/laptop.json``): SQLite, LocalExecutor."""
    document = json.loads(files("mlwf_instance").joinpath("laptop.json").read_text())
    return parse_spec(document, "mlwf_instance/laptop.json")


def run_foreground(
    make_instance: Callable[[threading.Event], Instance], *, prog: str, timeout: float
) -> int:
    """Start an instance, print its URL and credentials, run it until a signal; return the exit code.

    SIGINT, SIGTERM and SIGHUP stop every component (SIGTERM too: a shell script's ``&`` job
    inherits SIGINT ignored; SIGHUP: the terminal was closed). The components run in sessions
    of their own and see none of them. Exit code 0 after a requested stop, 1 when a component
    died or start-up failed, 2 when the instance could not even be described.
    """
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            write(sys.stderr, f"\n{prog}: {signal.Signals(signum).name} received, stopping…\n")

    previous = {
        sig: signal.signal(sig, request_stop)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        try:
            instance = make_instance(stop)
        except MlwfInstanceError as err:
            write(sys.stderr, f"{prog}: error: {err}\n")
            return 2
        return _run(instance, prog, timeout)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(instance: Instance, prog: str, timeout: float) -> int:
    def say(message: str) -> None:
        write(sys.stdout, f"{prog}: {message}\n")

    code = 0
    try:
        instance.start()
        instance.wait_healthy(timeout=timeout)
        if instance.directory_login:
            groups = ", ".join(instance.spec.groups.admin)
            login = f"  Login:    your directory account (admins: {groups})\n"
        else:
            creds = instance.credentials
            login = f"  Username: {creds.username}\n  Password: {creds.password}\n"
        folders = ", ".join(str(f) for f in instance.config.dag_folders)
        workers = sum(name.startswith("worker-") for name in instance.components)
        write(
            sys.stdout,
            "\n"
            f"  Airflow is ready at {instance.url}\n"
            + login
            + f"  Home:     {instance.home.root}\n"
            f"  DAGs:     {folders}\n"
            f"  Database: {instance.database.display}\n"
            + (f"  Workers:  {workers} Celery worker(s)\n" if workers else "")
            + "  Press Ctrl-C to stop.\n\n",
        )
        instance.run_until_stopped()
    except StopRequested:
        pass
    except ComponentDiedError as err:
        write(
            sys.stderr, f"{prog}: error: {instance.mask(str(err))}\nstopping the other components\n"
        )
        code = 1
    except MlwfInstanceError as err:
        write(sys.stderr, f"{prog}: error: {instance.mask(str(err))}\n")
        code = 1
    finally:
        # Nothing before stop() may raise: write() swallows a failing output.
        stopping = time.monotonic()
        say("stopping all components…")
        killed = instance.stop()
    forced = f", {killed} process(es) needed SIGKILL" if killed else ""
    outcome = "stopped" if code == 0 else "stopped after an error"
    say(f"{outcome} in {time.monotonic() - stopping:.1f} s{forced}")
    return code


def not_applied_here(spec: InstanceSpec) -> list[str]:
    """Return a note for each spec field that ``mlwf instance up`` stores but does not apply.

    Without ``ldap`` the instance logs in through Airflow's SimpleAuthManager, so its ``groups``
    decide nothing; the separate metrics port exists only in the helm and kubernetes renderings.
    """
    notes = []
    if spec.ldap is None and any((spec.groups.admin, spec.groups.users, spec.groups.viewers)):
        notes.append(
            "groups: applied only with ldap (the directory holds the members); this instance "
            "logs in with Airflow's SimpleAuthManager and its generated admin password"
        )
    if spec.kerberos is not None:
        notes.append(
            "kerberos.principal, kerberos.keytab: the instance's own ticket is renewed only on "
            "the helm and kubernetes targets (the airflow kerberos sidecar); here tasks use the "
            "ticket cache of the user running mlwf"
            + (" (kerberos.http_keytab, the login, applies)" if spec.kerberos.http_keytab else "")
        )
    if spec.metrics.enabled and spec.metrics.port is not None:
        notes.append(
            "metrics.port: used by the helm and kubernetes targets only; here the metrics "
            "are served through the API server (with mlwf-stats-bridge installed)"
        )
    return notes


def _load(args: argparse.Namespace, prog: str) -> InstanceSpec | None:
    try:
        return load_spec(args.spec)
    except SpecError as err:
        write(sys.stderr, f"{prog}: error: {err}\n")
        return None


def _home(spec: InstanceSpec, given: str | None) -> Path:
    root = Path(given) if given else spec.home or default_home(spec.name)
    return root.expanduser().resolve()


def cmd_up(args: argparse.Namespace) -> int:
    """``mlwf instance up SPEC``: run the spec's instance until a signal."""
    prog = "mlwf instance up"
    spec = _load(args, prog)
    if spec is None:
        return 2
    from mlwf_instance._instance import Instance

    def say(message: str) -> None:
        write(sys.stdout, f"{prog}: {message}\n")

    for note in not_applied_here(spec):
        say(f"note: {note}")
    return run_foreground(
        lambda stop: Instance(spec, home=args.home, output=say, stop_event=stop),
        prog=prog,
        timeout=args.timeout,
    )


def _health(url: str) -> dict[str, Any] | None:
    from mlwf_instance._api import get_health

    return get_health(url, timeout=5.0)


def cmd_status(args: argparse.Namespace) -> int:
    """``mlwf instance status SPEC``: 0 running and healthy, 1 degraded, 3 not running."""
    prog = "mlwf instance status"
    spec = _load(args, prog)
    if spec is None:
        return 2
    home = _home(spec, args.home)
    owner = read_owner(InstanceHome(home).pid_file)
    url = http_url(spec.api.host, spec.api.port)
    if not owner.running:
        write(sys.stdout, f"{spec.name}: not running (home {home})\n")
        return STATUS_NOT_RUNNING
    write(sys.stdout, f"{spec.name}: running, pid {owner.pid}, {url} (home {home})\n")
    health = _health(url)
    states = _component_states(health, owner.processes)
    width = max(len(name) for name in states)
    for name, (ok, detail) in states.items():
        write(sys.stdout, f"  {name:<{width}}  {'healthy' if ok else 'UNHEALTHY'}  {detail}\n")
    return STATUS_HEALTHY if all(ok for ok, _ in states.values()) else STATUS_DEGRADED


def _component_states(
    health: dict[str, Any] | None, processes: list[Any]
) -> dict[str, tuple[bool, str]]:
    """Return ``component → (healthy, detail)`` from the health document and the recorded pids."""
    from mlwf_instance._topology import COMPONENTS

    alive: dict[str, tuple[bool, str]] = {}
    for record in processes:
        if not record.name:
            continue
        try:
            proc = psutil.Process(record.pid)
            ok = same_start(record.create_time, proc.create_time()) and proc.is_running()
        except psutil.Error:
            ok = False
        alive[record.name] = (ok, f"pid {record.pid}" if ok else f"pid {record.pid} gone")
    states: dict[str, tuple[bool, str]] = {}
    for name in (*COMPONENTS, *sorted(n for n in alive if n not in COMPONENTS)):
        ok, detail = alive.get(name, (False, "not started"))
        key = name.replace("-", "_")
        if name == "api-server":
            ok = ok and health is not None
            detail += "" if health is not None else ", /api/v2/monitor/health does not answer"
        elif health is not None and key in health:
            status = (health.get(key) or {}).get("status")
            ok = ok and status == "healthy"
            detail += f", health: {status}"
        states[name] = (ok, detail)
    if health is not None:
        status = (health.get("metadatabase") or {}).get("status")
        states["metadatabase"] = (status == "healthy", f"health: {status}")
    return states


def cmd_down(args: argparse.Namespace) -> int:
    """``mlwf instance down SPEC``: SIGTERM the running ``up`` of that home and wait until it is gone."""
    prog = "mlwf instance down"
    spec = _load(args, prog)
    if spec is None:
        return 2
    home = _home(spec, args.home)
    pid_file = InstanceHome(home).pid_file
    owner = read_owner(pid_file)
    if not owner.running or owner.pid is None:
        write(sys.stdout, f"{spec.name}: not running (home {home})\n")
        return 0
    if not _same_process(owner.pid, owner.create_time):
        write(
            sys.stderr,
            f"{prog}: error: the pid file of {home} names process {owner.pid}, which holds its "
            "lock but started at another time than recorded; not signalling it\n",
        )
        return 1
    write(sys.stdout, f"{spec.name}: stopping process {owner.pid}…\n")
    try:
        os.kill(owner.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        write(sys.stderr, f"{prog}: error: not allowed to signal process {owner.pid}\n")
        return 1
    deadline = time.monotonic() + args.timeout
    while read_owner(pid_file).running:
        if time.monotonic() > deadline:
            write(
                sys.stderr,
                f"{prog}: error: process {owner.pid} still runs after {args.timeout:.0f} s\n",
            )
            return 1
        time.sleep(0.2)
    write(sys.stdout, f"{spec.name}: stopped\n")
    return 0


def _same_process(pid: int, create_time: float | None) -> bool:
    """Whether ``pid`` is still the process that wrote the pid file (no start time: assume so)."""
    if create_time is None:
        return True
    try:
        return same_start(create_time, psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return True  # gone already: the wait below sees the lock released
    except psutil.Error:
        return True


def add_actions(actions: Any) -> None:
    """Add ``up``, ``status`` and ``down`` to the ``mlwf instance`` subparsers."""
    for name, func, text in (
        ("up", cmd_up, "run the spec's instance here until Ctrl-C or SIGTERM"),
        ("status", cmd_status, "is the spec's instance running, and is each component healthy"),
        ("down", cmd_down, "stop the running `mlwf instance up` of the spec"),
    ):
        parser: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        parser.add_argument("spec", metavar="SPEC", help="the instance spec (JSON file)")
        parser.add_argument(
            "--home", help="instance home (default: the spec's home, else ~/.local/state/mlwf/NAME)"
        )
        if name != "status":
            parser.add_argument(
                "--timeout",
                type=float,
                default=300.0 if name == "up" else DOWN_TIMEOUT,
                help="seconds to wait for the instance to be healthy (up) or gone (down)",
            )
        parser.set_defaults(func=func)
