"""``mlwf instance schema`` and ``mlwf instance validate``: the spec's JSON schema, and checking specs.

``validate`` exits 0 when every spec is valid (one summary line each), 1 when any is not
(every error of every spec, each as ``json.path: message``), 2 on a usage error (argparse).
Secrets are never printed: ``--resolve-secrets`` says where each one comes from and that it
could be read, never what it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlwf_instance._spec import InstanceSpec, SpecError, load_spec, spec_json_schema


def summary(spec: InstanceSpec) -> str:
    """Return a one-line description of a spec: its name, database, executor and broker."""
    if spec.executor == "celery":
        workers = f"{spec.celery.workers} worker{'s' if spec.celery.workers != 1 else ''}"
        run = f"celery: {workers}, {spec.celery.broker_kind} broker"
    else:
        run = "local executor"
    return f"instance {spec.name!r} ({spec.database.kind}, {run})"


def check_secrets(spec: InstanceSpec, source: str) -> list[str]:
    """Read every secret of ``spec`` (and check the keytab file); raise SpecError listing failures.

    Returns, for each secret, where it came from (never its value).
    """
    errors: list[tuple[str, str]] = []
    found: list[str] = []
    for where, ref in spec.secrets():
        try:
            if where in ("kerberos.keytab", "kerberos.http_keytab") and spec.kerberos is not None:
                keytab = (
                    spec.kerberos.keytab_path()
                    if where == "kerberos.keytab"
                    else spec.kerberos.http_keytab_path()
                )
                if keytab is None or not os.access(keytab, os.R_OK) or not keytab.is_file():
                    raise SpecError(where, [(where, f"keytab {keytab} is not a readable file")])
            else:
                ref.resolve(where=where)
        except SpecError as err:
            errors.extend(err.errors)
            continue
        found.append(f"{where} from {ref.describe()}")
    if errors:
        raise SpecError(source, errors)
    return found


def _validate(args: argparse.Namespace) -> int:
    bad = 0
    for name in args.specs:
        try:
            spec = load_spec(name)
            line = f"{name}: {summary(spec)}"
            if args.resolve_secrets:
                secrets = check_secrets(spec, name)
                line += (
                    f"; secrets readable: {', '.join(secrets) if secrets else 'none in the spec'}"
                )
        except SpecError as err:
            bad += 1
            print(err, file=sys.stderr)
            continue
        print(line)
    if bad:
        total = len(args.specs)
        print(f"{bad} of {total} spec{'s' if total != 1 else ''} invalid", file=sys.stderr)
        return 1
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        print(f"mlwf instance schema: error: cannot write {out}: {err.strerror}", file=sys.stderr)
        return 1
    print(f"wrote the JSON schema of instance specs to {out}")
    return 0


def add_actions(actions: Any) -> None:
    """Add ``schema`` and ``validate`` to the ``mlwf instance`` subparsers."""
    schema: argparse.ArgumentParser = actions.add_parser(
        "schema",
        help="print the JSON schema of instance specs",
        description="Print the JSON schema (draft 2020-12) of an instance spec file.",
    )
    schema.add_argument("--out", metavar="FILE", help="write the schema to FILE instead")
    schema.set_defaults(func=_schema)

    validate: argparse.ArgumentParser = actions.add_parser(
        "validate",
        help="check instance spec files, listing every error",
        description=(
            "Check instance spec files. Prints one summary line per valid spec; for an invalid "
            "one, every error as `json.path: message`. Exit status: 0 all valid, 1 any invalid, "
            "2 usage error."
        ),
    )
    validate.add_argument("specs", nargs="+", metavar="SPEC", help="an instance spec (JSON file)")
    validate.add_argument(
        "--resolve-secrets",
        action="store_true",
        help="also read every secret (environment variables, files, the keytab) to check it is "
        "there; values are never printed",
    )
    validate.set_defaults(func=_validate)
