"""``mlwf instance render SPEC --target local|helm|kubernetes --out DIR [--force]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlwf_instance._errors import MlwfInstanceError
from mlwf_instance._render import TARGETS, render, write_rendered
from mlwf_instance._render_model import HELM_CHART_VERSION
from mlwf_instance._spec import load_spec


def cmd_render(args: argparse.Namespace) -> int:
    """Render a spec for a target into ``--out``; return the exit code (2 on bad input)."""
    out = Path(args.out)
    try:
        spec = load_spec(args.spec)
        files = render(spec, args.target)
        written = write_rendered(files, out, force=args.force)
    except MlwfInstanceError as err:
        # Messages name the spec field, file or folder at fault; none holds a secret value.
        sys.stderr.write(f"mlwf instance render: error: {err}\n")
        return 2
    except OSError as err:
        sys.stderr.write(f"mlwf instance render: error: cannot write {out}: {err.strerror}\n")
        return 2
    modes = {item.path: item.mode for item in files}
    target = args.target + (
        f" (official Airflow chart {HELM_CHART_VERSION})" if args.target == "helm" else ""
    )
    print(f"mlwf instance render: {spec.name} for {target}, {len(written)} files in {out}:")
    for path in written:
        relative = path.relative_to(out).as_posix()
        private = " (mode 0600)" if modes[relative] == 0o600 else ""
        print(f"  {relative}{private}")
    if args.target != "local":
        print(
            f"Next: create the Secrets named in {out / 'secrets.example.yaml'}, then see {out / 'README.md'}."
        )
    return 0


def add_actions(actions: Any) -> None:
    """Add ``render`` to the ``mlwf instance`` subparsers."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "render",
        help="write a spec's configuration for a target: local, helm or kubernetes",
        description=(
            "Render an instance spec: `local` (airflow.cfg, environment and process commands "
            "of `mlwf instance up`), `helm` (values for the official Apache Airflow chart "
            f"{HELM_CHART_VERSION}, a Dockerfile, the Secrets to create) or `kubernetes` (plain "
            "manifests). No rendered file holds a secret."
        ),
    )
    parser.add_argument("spec", help="the instance spec (JSON file)")
    parser.add_argument("--target", required=True, choices=sorted(TARGETS))
    parser.add_argument("--out", required=True, help="folder to write into (new or empty)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out, replacing same-named files",
    )
    parser.set_defaults(func=cmd_render)
