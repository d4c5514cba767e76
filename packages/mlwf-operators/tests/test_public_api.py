"""Every public name of mlwf_operators imports, lazily, and type checkers see its real type."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import mlwf_operators
import pytest

INIT = Path(mlwf_operators.__file__)


def test_every_name_in_all_imports() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    assert [n for n in mlwf_operators.__all__ if not hasattr(mlwf_operators, n)] == []


def test_a_lazy_name_is_the_object_of_its_module() -> None:
    """Each name of the table resolves to the very object its defining module holds."""
    for name, module in mlwf_operators._LAZY.items():
        assert getattr(mlwf_operators, name) is getattr(import_module(module), name), name


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    """A name outside the table raises AttributeError with the module and the name."""
    with pytest.raises(AttributeError, match="module 'mlwf_operators' has no attribute 'Nope'"):
        mlwf_operators.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_type_checking_imports_name_exactly_the_table() -> None:
    """The ``if TYPE_CHECKING:`` imports and the lazy table list the same names from the same modules."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    imported = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name  # `X as X`: an explicit re-export
    }
    assert imported == mlwf_operators._LAZY


def test_import_loads_no_operator_module_nor_airflow() -> None:
    """``import mlwf_operators`` alone imports none of its operator modules, Airflow or ML libraries."""
    code = (
        "import json, sys, mlwf_operators; "
        "print(json.dumps(sorted(m for m in sys.modules if m.partition('.')[0] in "
        "{'airflow', 'mlflow', 'sklearn', 'numpy', 'hdfs', 'jira', 'jenkins'} "
        "or m.startswith('mlwf_operators.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_strict_mypy_sees_the_real_types(tmp_path: Path) -> None:
    """Under mypy --strict a lazy name has its real type, and a misspelt name is an error."""
    from mypy import api

    (tmp_path / "use.py").write_text(
        "import mlwf_operators\n"
        "reveal_type(mlwf_operators.HdfsHook)\n"
        "reveal_type(mlwf_operators.ModelValidationError)\n"
        "mlwf_operators.HdfsHok\n"
    )
    # Only mlwf_operators is analysed (Airflow and the other libraries are skipped): seconds.
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\nfollow_imports = skip\n"
        "[mypy-mlwf_operators,mlwf_operators.*]\nfollow_imports = normal\n"
    )
    out, err, _ = api.run(
        [
            *("--config-file", str(tmp_path / "mypy.ini"), "--cache-dir", str(tmp_path / "cache")),
            *("--no-error-summary", "--hide-error-context", str(tmp_path / "use.py")),
        ]
    )
    lines = [line.partition(": ")[2] for line in out.splitlines()]
    assert len(lines) == 3, out + err  # two revealed types and one error
    hdfs_hook, validation_error, misspelt = lines
    # Before: `object` for every lazy name, and any name at all accepted.
    assert hdfs_hook.endswith('-> mlwf_operators.hooks.hdfs.HdfsHook"'), out + err
    assert validation_error.endswith('-> mlwf_operators._errors.ModelValidationError"'), out + err
    assert misspelt == 'error: Module has no attribute "HdfsHok"  [attr-defined]', out + err


def test_ml_operator_modules_leave_the_hook_and_the_load_generator_to_execute() -> None:
    """Importing the serving, load-test and registry operators (a DAG file's parse) imports neither
    the MLflow hook nor the load generator's client and run loops: their tasks import them."""
    code = (
        "import json, sys; "
        "import mlwf_operators.operators.load_test, mlwf_operators.operators.model_registry, "
        "mlwf_operators.operators.serving; "
        "print(json.dumps(sorted(m for m in sys.modules if m in "
        "{'mlwf_operators.hooks.mlflow', 'mlwf_operators.hooks._http', "
        "'mlwf_operators.loadgen._run', 'mlwf_operators.loadgen._client'})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_loadgen_names_are_the_objects_of_their_modules() -> None:
    """``mlwf_operators.loadgen``'s lazy names are its modules' objects, ``LoadTestResult`` one class."""
    from mlwf_operators import loadgen
    from mlwf_operators.loadgen import _result, _run

    assert loadgen.LoadTestResult is _result.LoadTestResult is _run.LoadTestResult
    assert loadgen.run_load is _run.run_load
    assert loadgen.LoadGenError is _run.LoadGenError
    assert loadgen.ServiceUnreachableError is _run.ServiceUnreachableError
    assert sorted(loadgen.__all__) == sorted(loadgen._LAZY)
    with pytest.raises(AttributeError, match=r"'mlwf_operators\.loadgen' has no attribute 'Nope'"):
        loadgen.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_the_registry_operator_defaults_to_the_hook_s_connection() -> None:
    """``RecordModelVersionOperator``'s default connection id is ``MlflowHook.default_conn_name``."""
    import inspect

    from mlwf_operators.hooks.mlflow import MlflowHook
    from mlwf_operators.operators.model_registry import RecordModelVersionOperator

    signature = inspect.signature(RecordModelVersionOperator.__init__)
    assert signature.parameters["mlflow_conn_id"].default == MlflowHook.default_conn_name
