"""``mlwf-types check PATH... [--format text|json]``: type-check DAG files in CI, before deploying them."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlwf_types._config import ENV_VAR

EXIT_OK, EXIT_ISSUES, EXIT_USAGE = 0, 1, 2
_KEYS = (
    "dag_id",
    "task_id",
    "argument",
    "producer_task_id",
    "xcom_key",
    "expected",
    "actual",
    "severity",
    "message",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlwf-types",
        description="Type-check the operator arguments and XCom edges of Airflow DAGs before they run.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="load DAG files (or folders of them) and report every type issue",
        description="Load DAG files or folders, report every type issue; exit 1 if there is any error.",
    )
    check.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="a DAG file or a folder of DAG files"
    )
    check.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    return parser


def _load(path: Path) -> tuple[list[Any], dict[str, str]]:
    """Parse DAG files the way Airflow's DAG processor does; return DAGs and import errors.

    Like a DAG bundle, the folder (or a file's folder) is importable, so DAG files can import
    helper modules that sit beside them.
    """
    from airflow.dag_processing.dagbag import DagBag

    root = str((path if path.is_dir() else path.parent).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    bag = DagBag(dag_folder=str(path), safe_mode=False, load_op_links=False)
    return list(bag.dags.values()), dict(bag.import_errors)


def _serialization_problem(dag: Any) -> str | None:
    """Serialize the DAG as the DAG processor does after parsing; describe why it fails, if it does.

    The processor turns such a failure into an import error, so a DAG can be sound in its types
    and still never appear (e.g. an operator listing Airflow's own ``params`` in template_fields).
    """
    from airflow.serialization.serialized_objects import DagSerialization

    try:
        DagSerialization.to_dict(dag)
    except Exception as exc:
        return f"DAG {dag.dag_id!r} cannot be serialized by Airflow, so the DAG processor would refuse it: {type(exc).__name__}: {exc}"
    return None


def run_check(paths: Sequence[Path], output_format: str) -> int:
    """Check ``paths``; print the report; return the exit code."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"mlwf-types: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    # The policy would refuse DAGs with errors while loading them: here we want to see them all.
    os.environ[ENV_VAR] = "off"
    from mlwf_types._checker import check_dag

    # Airflow's loggers (set up on `import airflow`) and DAG files may print: everything but the
    # report goes to stderr, so the JSON on stdout always parses.
    report = sys.stdout
    records: list[dict[str, Any]] = []
    dag_count = 0
    with contextlib.redirect_stdout(sys.stderr):
        for path in paths:
            dags, import_errors = _load(path)
            for file, error in sorted(import_errors.items()):
                record = dict.fromkeys(_KEYS)
                last_line = error.strip().splitlines()[-1] if error.strip() else error
                record.update(severity="error", message=f"{file} cannot be imported: {last_line}")
                records.append(record)
            for dag in sorted(dags, key=lambda d: d.dag_id):
                dag_count += 1
                records.extend(issue.to_dict() for issue in check_dag(dag))
                problem = _serialization_problem(dag)
                if problem:
                    record = dict.fromkeys(_KEYS)
                    record.update(dag_id=dag.dag_id, severity="error", message=problem)
                    records.append(record)
    errors = sum(1 for r in records if r["severity"] == "error")
    warnings = len(records) - errors
    if output_format == "json":
        print(json.dumps(records, indent=2), file=report)
    else:
        for record in records:
            print(f"{record['severity']}: {record['message']}", file=report)
        print(
            f"mlwf-types: {dag_count} DAG(s) checked, {errors} error(s), {warnings} warning(s)",
            file=report,
        )
    return EXIT_ISSUES if errors else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlwf-types`` command."""
    args = _parser().parse_args(argv)
    if args.command == "check":
        return run_check(args.paths, args.format)
    return EXIT_USAGE  # pragma: no cover - argparse enforces the sub-command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
