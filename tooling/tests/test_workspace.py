"""workspace.py reads package metadata from the packages/* glob."""

from __future__ import annotations

from pathlib import Path

import pytest
from workspace import REPO_ROOT, WorkspaceError, dependents_closure, discover_packages


def test_this_repository_packages_are_discovered_from_the_glob() -> None:
    """Every packages/*/pyproject.toml of this repository is a package named after its folder."""
    packages = discover_packages(REPO_ROOT)
    folders = sorted(p.parent.name for p in (REPO_ROOT / "packages").glob("*/pyproject.toml"))
    assert sorted(packages) == folders
    assert "mlwf-types" in packages


def test_folder_and_distribution_name_must_agree(tmp_path: Path) -> None:
    """A package whose folder differs from its distribution name is refused, naming the file."""
    (tmp_path / "packages" / "mlwf-x").mkdir(parents=True)
    (tmp_path / "packages" / "mlwf-x" / "pyproject.toml").write_text(
        '[project]\nname = "mlwf-y"\nversion = "1"\n', encoding="utf-8"
    )
    with pytest.raises(WorkspaceError, match=r"mlwf-x.pyproject\.toml.*'mlwf-y'"):
        discover_packages(tmp_path)


def test_dependents_closure_ignores_unknown_names(tmp_path: Path) -> None:
    """Names that are not workspace packages contribute nothing."""
    assert dependents_closure(discover_packages(tmp_path), ["requests"]) == set()
