"""``mlwf constructors list | create | delete | sync``: registered into the ``mlwf`` command.

With ``--url URL`` the commands (but ``sync``) go to that instance's HTTP API as the user
holding the Kerberos ticket (:mod:`mlwf_constructors._remote`). Otherwise they work on one
Airflow installation here: its store, DAG folder and metadata database. Which one, first
match wins:

1. ``--airflow-home DIR``: the AIRFLOW_HOME ``DIR`` (it must hold ``airflow.cfg``);
2. ``--home DIR``: the ``mlwf up`` home ``DIR`` (its AIRFLOW_HOME is ``DIR/airflow``);
3. ``AIRFLOW_CONFIG`` or ``AIRFLOW_HOME`` from the environment (the file must exist);
4. the ``mlwf up`` home of the current directory, ``./.mlwf`` (as ``mlwf up`` uses by default).

A place without ``airflow.cfg`` is an error naming the file that was expected (and the right
option when the place is the other kind of home): Airflow would otherwise write a default
configuration there and the command would act on an empty installation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlwf_constructors._errors import AirflowHomeError as AirflowHomeError, ConstructorsError

#: Default home of ``mlwf up``, relative to the current directory (as in ``mlwf up --home``).
DEFAULT_UP_HOME = Path(".mlwf")
#: AIRFLOW_HOME inside an ``mlwf up`` home.
UP_AIRFLOW_HOME = "airflow"


def resolve_airflow_home(
    airflow_home: str | None,
    up_home: str | None,
    environ: Mapping[str, str],
    cwd: Path,
) -> tuple[Path, Path, str]:
    """Return (AIRFLOW_HOME, airflow.cfg, how it was chosen) for the options and environment.

    Raises AirflowHomeError naming the missing ``airflow.cfg``, and the option that fits when
    the directory given is an ``mlwf up`` home passed as AIRFLOW_HOME or the other way round.
    """
    if airflow_home:
        home = (cwd / Path(airflow_home).expanduser()).resolve()
        config = home / "airflow.cfg"
        if config.is_file():
            return home, config, "--airflow-home"
        hint = ""
        if (home / UP_AIRFLOW_HOME / "airflow.cfg").is_file():
            hint = (
                f"; {home} is an `mlwf up` home: use --home {airflow_home} "
                f"(or --airflow-home {home / UP_AIRFLOW_HOME})"
            )
        raise AirflowHomeError(
            f"--airflow-home {airflow_home}: no Airflow configuration {config} "
            f"(expected the AIRFLOW_HOME of an Airflow installation){hint}"
        )
    if up_home:
        root = (cwd / Path(up_home).expanduser()).resolve()
        home = root / UP_AIRFLOW_HOME
        config = home / "airflow.cfg"
        if config.is_file():
            return home, config, "--home"
        hint = ""
        if (root / "airflow.cfg").is_file():
            hint = f"; {root} is an AIRFLOW_HOME: use --airflow-home {up_home}"
        raise AirflowHomeError(
            f"--home {up_home}: no Airflow configuration {config} (expected the home of an "
            f"`mlwf up` instance: has `mlwf up --home {up_home}` been run?){hint}"
        )
    if environ.get("AIRFLOW_CONFIG") or environ.get("AIRFLOW_HOME"):
        home = Path(environ.get("AIRFLOW_HOME") or "~/airflow").expanduser().resolve()
        source = "AIRFLOW_CONFIG" if environ.get("AIRFLOW_CONFIG") else "AIRFLOW_HOME"
        config = Path(environ.get("AIRFLOW_CONFIG") or home / "airflow.cfg").expanduser()
        if config.is_file():
            return home, config.resolve(), f"${source}"
        raise AirflowHomeError(
            f"${source} is set but the Airflow configuration {config} does not exist"
        )
    root = (cwd / DEFAULT_UP_HOME).resolve()
    config = root / UP_AIRFLOW_HOME / "airflow.cfg"
    if config.is_file():
        return root / UP_AIRFLOW_HOME, config, "the `mlwf up` home of the current directory"
    raise AirflowHomeError(
        f"no Airflow installation to work on: {config} does not exist (no `mlwf up` home in "
        f"{cwd}) and neither AIRFLOW_HOME nor AIRFLOW_CONFIG is set; pass --home (an `mlwf up` "
        f"home) or --airflow-home (an AIRFLOW_HOME)"
    )


def _service(args: argparse.Namespace) -> Any:
    home, config, source = resolve_airflow_home(
        args.airflow_home, args.home, os.environ, Path.cwd()
    )
    # Before Airflow is imported: its configuration is read once, at import.
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW_CONFIG"] = str(config)
    print(f"mlwf constructors: Airflow configuration {config} ({source})", file=sys.stderr)
    from mlwf_constructors._service import Constructors

    return Constructors.from_airflow()


def _values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if args.values:
        loaded = json.loads(args.values)
        if not isinstance(loaded, dict):
            raise ValueError("--values must be a JSON object")
        values.update(loaded)
    for item in args.set or []:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE")
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw  # a bare word is a string
    return values


def _remote(args: argparse.Namespace) -> Any:
    from mlwf_constructors._remote import Remote

    print(f"mlwf constructors: instance {args.url} (Kerberos)", file=sys.stderr)
    return Remote(args.url)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the registered constructors and the stored instances."""
    if args.url:
        from mlwf_constructors._remote import print_listing

        remote = _remote(args)
        constructors, instances = remote.constructors(), remote.instances()
        if args.output == "json":
            print(json.dumps({"constructors": constructors, "instances": instances}, indent=2))
        else:
            print_listing(constructors, instances)
        return 0
    svc = _service(args)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "constructors": [
                        {"name": r, "version": e.version, "schema": e.cls.schema()}
                        for r, e in sorted(svc.registry.items())
                    ],
                    "instances": [i.as_json() for i in svc.store.list()],
                },
                indent=2,
            )
        )
        return 0
    print("constructors:")
    for ref, entry in sorted(svc.registry.items()):
        params = ", ".join(p.name for p in entry.cls.parameters)
        print(f"  {ref} {entry.version} ({params}) from {entry.source}")
    print("instances:")
    for record in svc.store.list():
        state = "enabled" if record.enabled else "disabled"
        print(
            f"  {record.instance_id}: {record.constructor} {record.constructor_version} "
            f"{state} {json.dumps(record.values, sort_keys=True)}"
        )
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    """Create an instance and write its DAG file."""
    if args.url:
        if args.owner_group or args.owner:
            raise ValueError(
                "--owner and --owner-group are for a local store: with --url the instance "
                "records the signed-in user and groups"
            )
        made = _remote(args).create(
            args.instance_id, args.constructor, _values(args), enabled=not args.disabled
        )
        groups = ", ".join(made.get("owner_groups") or []) or "none"
        print(
            f"created instance {made.get('instance_id')!r} of {made.get('constructor')} on "
            f"{args.url} (owner {made.get('owner')}, groups {groups})"
        )
        return 0
    svc = _service(args)
    record = svc.create(
        args.instance_id,
        args.constructor,
        _values(args),
        owner=args.owner or os.environ.get("USER", "cli"),
        owner_groups=args.owner_group or (),
        enabled=not args.disabled,
    )
    print(
        f"created instance {record.instance_id!r} of {record.constructor} -> {svc.path(record.instance_id)}"
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete an instance and its DAG file."""
    if args.url:
        _remote(args).delete(args.instance_id)
        print(f"deleted instance {args.instance_id!r} on {args.url}")
        return 0
    _service(args).delete(args.instance_id)
    print(f"deleted instance {args.instance_id!r}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Re-create missing or altered DAG files from the store and remove orphans."""
    if args.url:
        raise ValueError("sync works on a local installation; an API server syncs at start")
    report = _service(args).sync()
    print(
        f"sync: wrote {len(report.written)}, removed {len(report.removed)}, "
        f"unchanged {len(report.unchanged)}, failed {len(report.failed)}"
    )
    for instance_id, error in sorted(report.failed.items()):
        print(f"  failed {instance_id}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def add_commands(commands: Any) -> None:
    """Add the ``constructors`` command group to an argparse subparsers object."""
    group = commands.add_parser(
        "constructors",
        help="list, create, delete and sync DAG constructor instances",
        description="Manage DAG constructor instances of the configured Airflow installation.",
    )
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--home",
        help=(
            "the `mlwf up` home to work on (as `mlwf up --home`); default: ./.mlwf unless "
            "AIRFLOW_HOME or AIRFLOW_CONFIG is set"
        ),
    )
    where.add_argument(
        "--airflow-home",
        help="an AIRFLOW_HOME to work on (it holds airflow.cfg), e.g. .mlwf/airflow",
    )
    where.add_argument(
        "--url",
        help="a remote instance's API server (https://host[:port]): list, create and delete "
        "through its HTTP API with your Kerberos ticket (extra mlwf-constructors[remote])",
    )
    sub = group.add_subparsers(dest="constructors_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="list constructors and instances")
    lst.add_argument("--output", choices=("text", "json"), default="text")
    lst.set_defaults(func=_guard(cmd_list))
    create = sub.add_parser("create", help="create an instance")
    create.add_argument("instance_id")
    create.add_argument("constructor")
    create.add_argument("--values", help="parameter values as a JSON object")
    create.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="one value (JSON, or a bare string)"
    )
    create.add_argument("--owner", help="the owner's name (default: $USER)")
    create.add_argument(
        "--owner-group",
        action="append",
        metavar="GROUP",
        help="a group owning the instance (repeatable; with mlwf-auth it may do everything on "
        "the instance's DAGs)",
    )
    create.add_argument("--disabled", action="store_true", help="store it without a DAG file")
    create.set_defaults(func=_guard(cmd_create))
    delete = sub.add_parser("delete", help="delete an instance")
    delete.add_argument("instance_id")
    delete.set_defaults(func=_guard(cmd_delete))
    sync = sub.add_parser("sync", help="re-create DAG files from the store, remove orphans")
    sync.set_defaults(func=_guard(cmd_sync))


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except (ConstructorsError, ValueError) as err:
            print(f"mlwf constructors: error: {err}", file=sys.stderr)
            return (
                2 if isinstance(err, ValueError) and not isinstance(err, ConstructorsError) else 1
            )
        return code

    run.__doc__ = func.__doc__
    return run
