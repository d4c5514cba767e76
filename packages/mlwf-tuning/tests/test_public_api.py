"""Every public name of mlwf_tuning imports."""

from __future__ import annotations

import mlwf_tuning


def test_every_name_in_all_imports() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    assert [n for n in mlwf_tuning.__all__ if not hasattr(mlwf_tuning, n)] == []


def test_importing_the_package_does_not_import_optuna_or_scikit_learn() -> None:
    """Every task of a DAG file that declares a tuning imports mlwf_tuning: the samplers load only when planning."""
    import subprocess
    import sys

    code = "import sys, mlwf_tuning; print(sorted(m for m in ('optuna', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
