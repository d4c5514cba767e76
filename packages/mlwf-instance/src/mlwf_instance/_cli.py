"""The ``mlwf`` command. Subcommands register in :func:`build_parser`: ``mlwf up``, ``mlwf constructors``."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import TextIO

from mlwf_instance._errors import ComponentDiedError, MlwfInstanceError
from mlwf_instance._instance import EmbeddedInstance
from mlwf_instance._supervisor import StopRequested

#: Default home of ``mlwf up``, relative to the current directory.
DEFAULT_HOME = Path(".mlwf")


def _write(stream: TextIO, text: str) -> None:
    """Write to the terminal or pipe, never raising: a reader that went away must not stop a stop.

    ``mlwf up | tee up.log`` then Ctrl-C kills ``tee`` too; writing then fails with EPIPE. The
    stream is pointed at /dev/null so that later writes (and the final flush) fail no more.
    """
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        _silence(stream)


def _silence(stream: TextIO) -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _say(message: str) -> None:
    _write(sys.stdout, f"mlwf up: {message}\n")


def _error(message: str) -> None:
    _write(sys.stderr, f"mlwf up: error: {message}\n")


def default_dags_folder(cwd: Path, home: Path) -> Path:
    """Return ``<cwd>/examples/dags`` if it exists, else ``<home>/dags``."""
    examples = cwd / "examples" / "dags"
    return examples if examples.is_dir() else home / "dags"


def _example_constructors(dags: Path) -> dict[str, dict[str, str]]:
    """Register the DAG folder's ``example_constructors`` module with mlwf-constructors, if present."""
    if (dags / "example_constructors.py").is_file():
        return {"mlwf_constructors": {"bundle_modules": "example_constructors"}}
    return {}


def cmd_up(args: argparse.Namespace) -> int:
    """Run an embedded instance until SIGINT, SIGTERM or SIGHUP; return the process exit code."""
    home = Path(args.home)
    dags = Path(args.dags_folder) if args.dags_folder else default_dags_folder(Path.cwd(), home)
    if args.dags_folder and not dags.is_dir():
        _error(f"DAGs folder {dags} does not exist or is not a directory")
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            _write(sys.stderr, f"\nmlwf up: {signal.Signals(signum).name} received, stopping…\n")

    # SIGTERM as well as SIGINT: a shell script's `&` job inherits SIGINT ignored. SIGHUP: the
    # terminal was closed. All three stop the instance; the components are in sessions of their
    # own and see none of them.
    previous = {
        sig: signal.signal(sig, request_stop)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        return _run(args, home, dags, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, home: Path, dags: Path, stop: threading.Event) -> int:
    try:
        instance = EmbeddedInstance(
            home,
            dags_folder=dags,
            port=args.port,
            output=_say,
            stop_event=stop,
            extra_config=_example_constructors(dags),
        )
    except MlwfInstanceError as err:
        _error(str(err))
        return 2
    code = 0
    killed = 0
    try:
        instance.start()
        instance.wait_healthy(timeout=args.timeout)
        creds = instance.credentials
        _write(
            sys.stdout,
            "\n"
            f"  Airflow is ready at {instance.url}\n"
            f"  Username: {creds.username}\n"
            f"  Password: {creds.password}\n"
            f"  Home:     {instance.home.root}\n"
            f"  DAGs:     {instance.config.dags_folder}\n"
            "  Press Ctrl-C to stop.\n\n",
        )
        instance.run_until_stopped()
    except StopRequested:
        pass
    except ComponentDiedError as err:
        _error(f"{err}\nstopping the other components")
        code = 1
    except MlwfInstanceError as err:
        _error(str(err))
        code = 1
    finally:
        # Nothing before stop() may raise: _say swallows a failing output (see _write).
        stopping = time.monotonic()
        _say("stopping all components…")
        killed = instance.stop()
    forced = f", {killed} process(es) needed SIGKILL" if killed else ""
    outcome = "stopped" if code == 0 else "stopped after an error"
    _say(f"{outcome} in {time.monotonic() - stopping:.1f} s{forced}")
    return code


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``mlwf`` command with all its subcommands."""
    from mlwf_instance import __version__

    parser = argparse.ArgumentParser(prog="mlwf", description="ML Workflows on Apache Airflow 3.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="run an embedded Airflow instance with every installed mlwf package",
        description=(
            "Run an embedded Airflow instance (SQLite, LocalExecutor, SimpleAuthManager) with "
            "every installed mlwf package active, until Ctrl-C or SIGTERM."
        ),
    )
    up.add_argument(
        "--home",
        default=str(DEFAULT_HOME),
        help="instance home; created if missing, reused on restart (default: ./.mlwf)",
    )
    up.add_argument("--port", type=int, default=8080, help="API server port (default: 8080)")
    up.add_argument(
        "--dags-folder",
        help="DAGs folder (default: ./examples/dags if it exists, else <home>/dags)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for the instance to report healthy (default: 180)",
    )
    up.set_defaults(func=cmd_up)
    _add_contributed_commands(commands)
    return parser


#: Entry point group of ``mlwf`` subcommands: each value is ``add_commands(subparsers)``.
COMMANDS_GROUP = "mlwf.commands"


def _add_contributed_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Let every installed package add its subcommands (entry point group ``mlwf.commands``).

    A package that fails to load does not break the other commands: its command is replaced by
    one that explains the failure.
    """
    for entry_point in sorted(entry_points(group=COMMANDS_GROUP), key=lambda ep: ep.name):
        try:
            add_commands = entry_point.load()
            add_commands(commands)
        except Exception as err:  # a broken plugin must not take `mlwf` down
            broken = commands.add_parser(
                entry_point.name, help=f"(unavailable: {type(err).__name__})"
            )
            broken.set_defaults(func=_unavailable(entry_point.value, err))


def _unavailable(value: str, err: Exception) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        _write(sys.stderr, f"mlwf: error: the command from {value} failed to load: {err}\n")
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mlwf`` command and return its exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
