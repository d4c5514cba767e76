"""The ``mlwf`` command. Subcommands register in :func:`build_parser`: ``mlwf up``, ``mlwf constructors``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from mlwf_instance._cli_run import laptop_spec, run_foreground
from mlwf_instance._console import write
from mlwf_instance._instance import Instance
from mlwf_instance._spec import DagFolder, InstanceSpec

#: Default home of ``mlwf up``, relative to the current directory.
DEFAULT_HOME = Path(".mlwf")


_write = write  # kept importable under its old name


def default_dags_folder(cwd: Path, home: Path) -> Path:
    """Return ``<cwd>/examples/dags`` if it exists, else ``<home>/dags``."""
    examples = cwd / "examples" / "dags"
    return examples if examples.is_dir() else home / "dags"


def _example_constructors(dags: Path) -> dict[str, dict[str, str]]:
    """Register the DAG folder's ``example_constructors`` module with mlwf-constructors, if present."""
    if (dags / "example_constructors.py").is_file():
        return {"mlwf_constructors": {"bundle_modules": "example_constructors"}}
    return {}


def laptop_instance_spec(home: Path, dags: Path, port: int) -> InstanceSpec:
    """Return the packaged laptop spec with ``mlwf up``'s DAGs folder, port and home."""
    spec = laptop_spec()
    config = {
        section: dict(options)
        for section, options in spec.airflow_config.items()
        if section != "mlwf_constructors"
    }
    constructors = dict(spec.airflow_config.get("mlwf_constructors", {}))
    constructors.pop("bundle_modules", None)
    constructors.update(_example_constructors(dags).get("mlwf_constructors", {}))
    if constructors:
        config["mlwf_constructors"] = constructors
    return spec.model_copy(
        update={
            "dag_folders": [DagFolder(path=dags.expanduser().resolve())],
            "api": spec.api.model_copy(update={"port": port}),
            "home": home,
            "airflow_config": config,
        }
    )


def cmd_up(args: argparse.Namespace) -> int:
    """Run the laptop instance until SIGINT, SIGTERM or SIGHUP; return the process exit code."""
    home = Path(args.home)
    dags = Path(args.dags_folder) if args.dags_folder else default_dags_folder(Path.cwd(), home)
    if args.dags_folder and not dags.is_dir():
        write(
            sys.stderr, f"mlwf up: error: DAGs folder {dags} does not exist or is not a directory\n"
        )
        return 2

    def say(message: str) -> None:
        write(sys.stdout, f"mlwf up: {message}\n")

    spec = laptop_instance_spec(home, dags, args.port)
    return run_foreground(
        lambda stop: Instance(spec, home=home, output=say, stop_event=stop),
        prog="mlwf up",
        timeout=args.timeout,
    )


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
