"""The cluster policy inside Airflow's own DagBag, and the ``mlwf-types check`` command."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOOD = """
import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1))
def good():
    @task
    def n() -> int:
        return 1

    @task
    def show(x: float) -> None:
        print(x)

    show(n())

good()
"""

BAD = """
import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1))
def bad():
    @task
    def text() -> str:
        return "x"

    @task
    def double(n: int) -> int:
        return 2 * n

    double(text())
    double.override(task_id="again")(n=text())

bad()
"""

TEMPLATED = """
import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1))
def templated():
    @task
    def double(n: int) -> int:
        return 2 * n

    double("{{ params.get('n', 1) }}")

templated()
"""


def write_dags(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def load(folder: Path) -> tuple[dict[str, object], dict[str, str]]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder), safe_mode=False, load_op_links=False)
    return dict(bag.dags), dict(bag.import_errors)


def test_policy_refuses_a_mismatched_dag_with_every_issue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In error mode a DAG with type errors becomes an import error listing all of them."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "error")
    dags, errors = load(write_dags(tmp_path, good=GOOD, bad=BAD))
    assert sorted(dags) == ["good"]
    [(file, message)] = errors.items()
    assert file.endswith("bad.py")
    assert "mlwf-types found 2 type error(s) in DAG 'bad':" in message
    assert (
        "DAG 'bad' task 'double' argument 'n' expects int, but task 'text' pushes XCom 'return_value' of type str"
        in message
    )
    assert "DAG 'bad' task 'again' argument 'n' expects int" in message


def test_policy_warn_mode_loads_the_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In warn mode the DAG loads and the issues are logged."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "warn")
    dags, errors = load(write_dags(tmp_path, bad=BAD))
    assert sorted(dags) == ["bad"] and errors == {}


def test_policy_off_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In off mode nothing is checked."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "off")
    dags, errors = load(write_dags(tmp_path, bad=BAD))
    assert sorted(dags) == ["bad"] and errors == {}


def test_templates_only_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Jinja template into an int is a warning: the DAG still loads in error mode."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "error")
    dags, errors = load(write_dags(tmp_path, templated=TEMPLATED))
    assert sorted(dags) == ["templated"] and errors == {}


def test_invalid_mode_is_a_clear_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in [mlwf_types] mode is reported, not silently treated as a default."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "strict")
    _, errors = load(write_dags(tmp_path, good=GOOD))
    [message] = errors.values()
    assert "[mlwf_types] mode must be one of error, warn, off, not 'strict'" in message


def test_policy_calls_the_public_check_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper set as ``mlwf_types.check_dag`` (to time or log checks) is what the policy calls."""
    import mlwf_types

    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "error")
    checked: list[str] = []
    real_check_dag = mlwf_types.check_dag

    def recording_check_dag(dag: object) -> list[mlwf_types.TypeIssue]:
        checked.append(getattr(dag, "dag_id", "?"))
        return real_check_dag(dag)

    monkeypatch.setattr(mlwf_types, "check_dag", recording_check_dag)
    dags, errors = load(write_dags(tmp_path, good=GOOD, bad=BAD))
    assert sorted(checked) == ["bad", "good"]
    assert sorted(dags) == ["good"] and len(errors) == 1  # the real checks still ran


def test_policy_module_imports_without_side_effects() -> None:
    """Airflow imports the policy module during ``import airflow``: it must import cleanly on its own."""
    code = "import mlwf_types.policy as p; print(hasattr(p, 'dag_policy'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlwf_types._cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_json_lists_every_issue_and_exits_1(tmp_path: Path) -> None:
    """``check --format json`` prints parseable JSON with the documented keys, exit code 1 on errors."""
    folder = write_dags(
        tmp_path, good=GOOD, bad=BAD, templated=TEMPLATED, broken="print('noise'); 1/0\n"
    )
    result = run_cli("check", "--format", "json", str(folder))
    assert result.returncode == 1, result.stderr
    records = json.loads(result.stdout)
    assert {tuple(sorted(r)) for r in records} == {
        (
            "actual",
            "argument",
            "dag_id",
            "expected",
            "message",
            "producer_task_id",
            "severity",
            "task_id",
            "xcom_key",
        )
    }
    assert sorted((r["dag_id"] or "", r["task_id"] or "", r["severity"]) for r in records) == [
        ("", "", "error"),
        ("bad", "again", "error"),
        ("bad", "double", "error"),
        ("templated", "double", "warning"),
    ]


def test_cli_imports_helper_modules_beside_the_dag_files(tmp_path: Path) -> None:
    """DAG files may import modules from their own folder, as in a DAG bundle."""
    helper = "def answer() -> int:\n    return 42\n"
    uses = GOOD.replace("import datetime", "import datetime\nfrom helper_mod import answer")
    result = run_cli("check", str(write_dags(tmp_path, helper_mod=helper, uses=uses)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_text_clean_folder_exits_0(tmp_path: Path) -> None:
    """A sound folder exits 0 with a one-line summary."""
    result = run_cli("check", str(write_dags(tmp_path, good=GOOD, templated=TEMPLATED)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.splitlines()[-1] == "mlwf-types: 2 DAG(s) checked, 0 error(s), 1 warning(s)"
    )


def test_cli_reports_files_that_fail_to_import(tmp_path: Path) -> None:
    """A DAG file that raises on import is an error, so CI fails."""
    result = run_cli("check", str(write_dags(tmp_path, broken="raise RuntimeError('boom')\n")))
    assert result.returncode == 1
    assert "broken.py cannot be imported: RuntimeError: boom" in result.stdout


UNSERIALIZABLE = """
import datetime
from airflow.sdk import BaseOperator, dag

class Reserved(BaseOperator):
    template_fields = ("params",)  # Airflow's own attribute: the DAG cannot be serialized

    def execute(self, context):
        return None

@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1))
def unserializable():
    Reserved(task_id="r")

unserializable()
"""


def test_cli_reports_dags_airflow_cannot_serialize(tmp_path: Path) -> None:
    """A DAG the DAG processor would refuse at serialization is an error, even with sound types."""
    result = run_cli(
        "check", "--format", "json", str(write_dags(tmp_path, unserializable=UNSERIALIZABLE))
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [record] = json.loads(result.stdout)
    assert record["dag_id"] == "unserializable"
    assert (
        "cannot be serialized by Airflow, so the DAG processor would refuse it" in record["message"]
    )
    assert "params" in record["message"]


def test_cli_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    """A path that does not exist exits 2 naming it."""
    result = run_cli("check", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr and "nope" in result.stderr
