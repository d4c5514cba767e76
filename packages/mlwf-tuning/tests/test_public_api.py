"""Every public name of mlwf_tuning imports."""

from __future__ import annotations

import mlwf_tuning
import pytest


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


OLD_EXCEPTION_NAMES = {
    "UnknownTuningMethod": "UnknownTuningMethodError",
    "TooManyFailedExperiments": "TooManyFailedExperimentsError",
    "TuningSpecMismatch": "TuningSpecMismatchError",
    "ExperimentConflict": "ExperimentConflictError",
    "ExperimentNotFound": "ExperimentNotFoundError",
    "ExperimentPruned": "ExperimentPrunedError",
    "ExperimentRunPruned": "ExperimentRunPrunedError",
    "ForeignExperimentRun": "ForeignExperimentRunError",
}


@pytest.mark.parametrize(("old", "new"), sorted(OLD_EXCEPTION_NAMES.items()))
def test_exception_names_before_0_2_are_the_renamed_classes_with_a_warning(
    old: str, new: str
) -> None:
    """An old exception name still imports the renamed class, and warns naming the new one."""
    with pytest.warns(DeprecationWarning, match=f"mlwf_tuning.{old} is deprecated; use {new}"):
        cls = getattr(mlwf_tuning, old)
    assert cls is getattr(mlwf_tuning, new)
    assert new in mlwf_tuning.__all__ and old not in mlwf_tuning.__all__


def test_an_old_name_catches_what_the_package_raises() -> None:
    """Code that catches an old name catches the error the package raises under the new one."""
    with pytest.warns(DeprecationWarning):
        from mlwf_tuning import UnknownTuningMethod
    with pytest.raises(UnknownTuningMethod):
        mlwf_tuning.resolve_method("no-such-method")


def test_unknown_attributes_are_still_attribute_errors() -> None:
    """The deprecation hook answers only the old names: anything else is an AttributeError."""
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = mlwf_tuning.NoSuchThing
