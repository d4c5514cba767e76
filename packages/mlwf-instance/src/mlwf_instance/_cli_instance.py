"""``mlwf instance``: validate a team's instance spec, render it for a target, run it here.

Each action lives in its own module (``_cli_spec``: schema and validate; ``_cli_render``: render;
``_cli_run``: up, status and down) and adds itself to the ``instance`` parser here.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any) -> None:
    """Add the ``instance`` command group to the ``mlwf`` subparsers (entry point ``mlwf.commands``)."""
    group: argparse.ArgumentParser = commands.add_parser(
        "instance",
        help="a team's instance from a JSON spec: schema, validate, render, up, status, down",
        description=(
            "Work with an instance spec: a short JSON file describing one team's Airflow "
            "instance (database, executor and broker, DAG folders, groups, identity)."
        ),
    )
    actions = group.add_subparsers(dest="instance_command", metavar="ACTION", required=True)
    from mlwf_instance import _cli_render, _cli_run, _cli_spec

    for module in (_cli_spec, _cli_render, _cli_run):
        module.add_actions(actions)
