"""release_check.py itself: its usage errors, and that it runs a package's tests against the wheel
installed from a real local index (pypiserver) and fails when they fail."""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_index import local_index
from release import build, publish
from release_check import (
    CheckError,
    _scratch_tree,
    _test_requirements,
    _wheel_requirements,
    check_package,
    main,
)
from workspace import NATIVE_EXTRAS, REPO_ROOT, Package, discover_packages

#: The copied package's only test file: passes only if mlwf_types comes from the venv's wheel.
_FROM_THE_WHEEL = """
import mlwf_types


def test_imported_from_the_installed_wheel():
    assert "/site-packages/" in mlwf_types.__file__, mlwf_types.__file__
"""


def test_without_a_package_or_system_it_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "name at least one PACKAGE, or --system" in capsys.readouterr().err


def test_an_unknown_package_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mlwf-nothing"]) == 2
    assert "no package named ['mlwf-nothing']" in capsys.readouterr().err


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """mlwf-types built from this repository and uploaded to a throwaway index: (wheel, URL)."""
    work = tmp_path_factory.mktemp("release-check")
    build(REPO_ROOT, work / "dist", ["mlwf-types"])
    with local_index(work / "index") as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("TWINE_USERNAME", "release-check-test")
        patch.setenv("TWINE_PASSWORD", "unchecked")
        publish(REPO_ROOT, work / "dist", url, ["mlwf-types"])
        [wheel] = (work / "dist" / "mlwf-types").glob("*.whl")
        yield wheel, url


def _package_with_tests(folder: Path, test: str) -> Package:
    """mlwf-types with a one-file test suite (`tests/test_public_api.py`) and pytest alone as its test group."""
    real = discover_packages(REPO_ROOT)["mlwf-types"]
    (folder / "tests").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "mlwf-types"\nversion = "{real.version}"\n\n'
        '[dependency-groups]\ntest = ["pytest>=8"]\n'
    )
    (folder / "tests" / "test_public_api.py").write_text(test)
    return dataclasses.replace(real, folder=folder)


def test_the_tests_run_against_the_installed_wheel(
    indexed: tuple[Path, str], tmp_path: Path
) -> None:
    """The package's tests import it from the venv's site-packages, never from the source tree."""
    wheel, url = indexed
    package = _package_with_tests(tmp_path / "package", _FROM_THE_WHEEL)
    summary = check_package(package, wheel, url, tmp_path / "work", lowest=False, smoke=True)
    assert summary.startswith("mlwf-types (latest): install ")
    assert "apache-airflow 3." in summary  # the requirements it was tested with are reported


def test_a_failing_test_fails_the_check(indexed: tuple[Path, str], tmp_path: Path) -> None:
    """A test that fails against the installed wheel makes the check raise, naming the package."""
    wheel, url = indexed
    failing = _FROM_THE_WHEEL.replace('"/site-packages/" in', '"/site-packages/" not in')
    package = _package_with_tests(tmp_path / "package", failing)
    with pytest.raises(CheckError, match=r"mlwf-types \(latest\): its tests failed"):
        check_package(package, wheel, url, tmp_path / "work", lowest=False, smoke=True)


def test_the_scratch_tree_leaves_out_only_the_top_level_src(tmp_path: Path) -> None:
    """The copy lacks the package's src/ and caches but keeps other src/ folders and the shared ones."""
    real = discover_packages(REPO_ROOT)["mlwf-ui"]
    folder = tmp_path / "mlwf-ui"
    for relative in (
        "src/mlwf_ui/__init__.py",
        "frontend/src/main.tsx",
        "frontend/node_modules/react/index.js",
        "tests/__pycache__/x.pyc",
        "tests/test_plugin.py",
    ):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text("")
    copied = _scratch_tree(dataclasses.replace(real, folder=folder), tmp_path / "work")
    files = {p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()}
    assert files == {"frontend/src/main.tsx", "tests/test_plugin.py"}
    examples = copied.parents[1] / "examples"
    assert examples.is_dir() and not examples.is_symlink()  # a copy: resolving stays inside


def test_a_native_extra_is_installed_where_its_build_tool_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlwf-auth's kerberos extra is tested where krb5-config is on PATH, as in nox's tests session."""
    auth = discover_packages(REPO_ROOT)["mlwf-auth"]
    (tmp_path / NATIVE_EXTRAS["kerberos"]).write_text("#!/bin/sh\n")
    (tmp_path / NATIVE_EXTRAS["kerberos"]).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "kerberos" in _test_requirements(auth)[1]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "kerberos" not in _test_requirements(auth)[1]


def test_the_requirements_of_installed_extras_are_direct_ones(tmp_path: Path) -> None:
    """An installed extra's requirements come without their marker, so lowest-direct lowers them."""
    wheel = tmp_path / "mlwf_example-0.1.0-py3-none-any.whl"
    metadata = (
        "Metadata-Version: 2.4\nName: mlwf-example\nVersion: 0.1.0\n"
        "Requires-Dist: statsd<5,>=4\n"
        'Requires-Dist: apache-airflow<4,>=3.3; extra == "airflow"\n'
        'Requires-Dist: redis>=5; extra == "redis"\n'
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mlwf_example-0.1.0.dist-info/METADATA", metadata)
    assert _wheel_requirements(wheel) == ["statsd<5,>=4"]
    assert _wheel_requirements(wheel, ["airflow"]) == ["statsd<5,>=4", "apache-airflow<4,>=3.3"]
