"""Importing any mlwf module, or an example DAG file, loads none of the heavy ML libraries.

DAG files are parsed again and again by every Airflow component, under ``dagbag_import_timeout``:
a DAG file that imports an mlwf module must not pay for mlflow, scikit-learn, pandas, scipy,
optuna or joblib (issue 10 item 14). Hooks and operators import them in ``execute``/``get_conn``.

Each check runs in a fresh interpreter (``python -c``), one per package and one per example DAG
file: an import hook records, for the first import of each forbidden library, the chain of
modules being executed at that moment, so a failure names the module that imported it and the
import chain that led there. The modules checked are the public ones of each package's ``src``
(no ``_``-prefixed part; ``__main__`` scripts are not modules a DAG imports): a private module is
checked through the public modules that import it, and a private module nothing public imports
(such as an Optuna sampler module loaded when a tuning round runs) is runtime-only by design.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("mlflow", "sklearn", "pandas", "scipy", "optuna", "joblib")
PACKAGES = sorted(
    p.name for p in (ROOT / "packages").glob("*/src/*") if (p / "__init__.py").is_file()
)
EXAMPLE_DAGS = sorted((ROOT / "examples" / "dags").glob("*.py"))
TIMEOUT_S = 600  # one interpreter importing Airflow and a whole package on a busy 2-core machine

# Run in the fresh interpreter: argv[1] is "modules" (then the top-level package) or "file"
# (then a DAG file's path). Prints one JSON line: the forbidden libraries loaded, each with the
# chain of modules that were executing when it was first imported, the modules checked and the
# modules that failed to import.
_PROBE = r"""
import importlib, importlib.abc, json, pkgutil, runpy, sys, traceback

FORBIDDEN = set(sys.argv[3].split(","))
chains = {}

class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in FORBIDDEN and top not in chains:
            chain, frame = [], sys._getframe(1)
            while frame is not None:
                name = frame.f_globals.get("__name__", "?")
                if frame.f_code.co_name == "<module>":
                    chain.append(name)
                elif name.startswith("mlwf"):
                    chain.append(f"{name}:{frame.f_code.co_name}()")
                frame = frame.f_back
            chain = [c for c in reversed(chain) if c != "__main__" and not c.startswith("importlib")]
            chains[top] = chain + [fullname]
        return None

sys.meta_path.insert(0, Recorder())
checked, errors = [], {}
if sys.argv[1] == "modules":
    root = importlib.import_module(sys.argv[2])
    names = [sys.argv[2]] + sorted(
        m.name for m in pkgutil.walk_packages(root.__path__, sys.argv[2] + ".")
    )
    for name in names:
        if any(part.startswith("_") for part in name.split(".")[1:]):
            continue
        try:
            importlib.import_module(name)
            checked.append(name)
        except Exception:
            errors[name] = traceback.format_exc(limit=-3)
else:
    runpy.run_path(sys.argv[2], run_name="dag_file")
    checked.append(sys.argv[2])
loaded = sorted({m.partition(".")[0] for m in sys.modules} & FORBIDDEN)
print("MLWF-PROBE " + json.dumps({
    "loaded": {top: chains.get(top, ["(imported before the hook)"]) for top in loaded},
    "checked": checked,
    "errors": errors,
}))
"""


def _probe(mode: str, target: str, home: Path) -> dict[str, Any]:
    """Run the probe in a fresh interpreter with a throwaway AIRFLOW_HOME; return its report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, target, ",".join(FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        cwd=home,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("MLWF-PROBE ")]
    assert result.returncode == 0 and lines, (
        f"importing {target} in a fresh interpreter failed (exit {result.returncode}):\n"
        f"{result.stderr[-3000:]}"
    )
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("MLWF-PROBE "))
    return report


def _explain(target: str, loaded: dict[str, list[str]]) -> str:
    lines = [
        f"importing {target} loads {sorted(loaded)}; the first import of each, outermost first:"
    ]
    for top, chain in sorted(loaded.items()):
        importer = next((c for c in reversed(chain[:-1]) if c.startswith("mlwf")), chain[0])
        lines.append(f"  {top}: imported by {importer}; chain: {' -> '.join(chain)}")
    return "\n".join(lines)


@pytest.mark.parametrize("package", PACKAGES)
def test_public_modules_import_no_heavy_library(package: str, tmp_path: Path) -> None:
    """Issue 10 item 14: importing every public module of the package loads none of mlflow, scikit-learn, pandas, scipy, optuna, joblib."""
    report = _probe("modules", package, tmp_path)
    assert report["errors"] == {}, f"modules of {package} that do not import: {report['errors']}"
    assert len(report["checked"]) >= 1
    assert report["loaded"] == {}, _explain(
        f"the public modules of {package} ({len(report['checked'])})", report["loaded"]
    )


@pytest.mark.parametrize("dag_file", EXAMPLE_DAGS, ids=lambda p: p.name)
def test_example_dag_file_imports_no_heavy_library(dag_file: Path, tmp_path: Path) -> None:
    """Issue 10 item 14: parsing the example DAG file loads none of mlflow, scikit-learn, pandas, scipy, optuna, joblib."""
    report = _probe("file", str(dag_file), tmp_path)
    assert report["loaded"] == {}, _explain(f"examples/dags/{dag_file.name}", report["loaded"])


def test_the_probe_names_the_importer(tmp_path: Path) -> None:
    """The check itself works: a module importing joblib is reported with the module that imported it."""
    dag = tmp_path / "heavy_dag.py"
    dag.write_text("import json\nimport joblib\n")
    report = _probe("file", str(dag), tmp_path)
    assert list(report["loaded"]) == ["joblib"]
    assert report["loaded"]["joblib"][0] == "dag_file"
    assert "imported by dag_file" in _explain("heavy_dag.py", report["loaded"])
