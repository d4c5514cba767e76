"""``mlwf constructors list | create | delete | sync``: registered into the ``mlwf`` command.

The commands work on the Airflow installation the environment configures (``AIRFLOW_HOME`` /
``AIRFLOW_CONFIG``, or ``--airflow-home``): its store, DAG folder and metadata database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlwf_constructors._errors import ConstructorsError


def _service(args: argparse.Namespace) -> Any:
    if args.airflow_home:
        home = Path(args.airflow_home).expanduser().resolve()
        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ["AIRFLOW_CONFIG"] = str(home / "airflow.cfg")
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


def cmd_list(args: argparse.Namespace) -> int:
    """Print the registered constructors and the stored instances."""
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
    svc = _service(args)
    record = svc.create(
        args.instance_id,
        args.constructor,
        _values(args),
        owner=args.owner,
        enabled=not args.disabled,
    )
    print(
        f"created instance {record.instance_id!r} of {record.constructor} -> {svc.path(record.instance_id)}"
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete an instance and its DAG file."""
    _service(args).delete(args.instance_id)
    print(f"deleted instance {args.instance_id!r}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Re-create missing or altered DAG files from the store and remove orphans."""
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
    group.add_argument(
        "--airflow-home",
        help="AIRFLOW_HOME to use (e.g. .mlwf/airflow for `mlwf up`); default: the environment's",
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
    create.add_argument("--owner", default=os.environ.get("USER", "cli"))
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
