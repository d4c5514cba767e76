"""Every package's [project] metadata is complete enough for its index page (dist_check)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dist_check import check_project_metadata
from workspace import discover_packages

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(discover_packages(ROOT)))
def test_package_metadata_is_complete(name: str) -> None:
    """License, license file, readme, authors, Python and Airflow classifiers are all declared."""
    assert check_project_metadata(discover_packages(ROOT)[name]) == []


def test_incomplete_metadata_is_named(tmp_path: Path) -> None:
    """A pyproject with a table license, a missing readme and bare classifiers gets each named."""
    folder = tmp_path / "packages" / "mlwf-bare"
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "mlwf-bare"\nversion = "0.1.0"\ndescription = "d"\n'
        'readme = "README.rst"\nlicense = { text = "Apache-2.0" }\n'
        'license-files = ["LICENSE"]\nclassifiers = ["Typing :: Typed"]\n',
        encoding="utf-8",
    )
    problems = "\n".join(check_project_metadata(discover_packages(tmp_path)["mlwf-bare"]))
    for expected in (
        "no 'requires-python'",
        "no 'authors'",
        "readme 'README.rst' is not a Markdown file",
        "license must be an SPDX expression",
        "license-files 'LICENSE' matches no file",
        "no classifier 'Framework :: Apache Airflow'",
        "no classifier 'Programming Language :: Python :: 3.N'",
    ):
        assert expected in problems
