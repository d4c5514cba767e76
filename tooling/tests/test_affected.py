"""affected.py on a real git repository that each test builds and commits to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepo import commit as _commit, git as _git, write as _write

AFFECTED = Path(__file__).resolve().parent.parent / "affected.py"


def _toml_array(items: list[str]) -> str:
    return "[" + ", ".join(item if item.startswith("{") else f'"{item}"' for item in items) + "]"


def _pyproject(name: str, dependencies: list[str], test_group: list[str] | None = None) -> str:
    text = f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = {_toml_array(dependencies)}\n'
    if test_group is not None:
        text += f"\n[dependency-groups]\ntest = {_toml_array(test_group)}\n"
    return text


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A workspace: types <- operators <- tuning (via a test group: stats), auth alone."""
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "dev@example.invalid")
    _git(tmp_path, "config", "user.name", "Dev")
    _git(tmp_path, "config", "commit.gpgsign", "false")
    _write(tmp_path, "pyproject.toml", '[project]\nname = "root"\nversion = "0"\n')
    _write(tmp_path, "noxfile.py", "")
    _write(tmp_path, "README.md", "# root\n")
    _write(
        tmp_path,
        "packages/mlwf-types/pyproject.toml",
        _pyproject("mlwf-types", ["apache-airflow>=3.3,<4"]),
    )
    _write(tmp_path, "packages/mlwf-types/src/mlwf_types/__init__.py", "")
    _write(
        tmp_path,
        "packages/mlwf-operators/pyproject.toml",
        _pyproject("mlwf_Operators", ["mlwf-types>=0.1,<1", "requests"]),
    )
    _write(
        tmp_path,
        "packages/mlwf-tuning/pyproject.toml",
        _pyproject("mlwf-tuning", ["mlwf-operators >=0.1"]),
    )
    _write(
        tmp_path,
        "packages/mlwf-stats-bridge/pyproject.toml",
        _pyproject(
            "mlwf-stats-bridge", [], test_group=["pytest", "mlwf-tuning", '{include-group = "x"}']
        ),
    )
    _write(
        tmp_path, "packages/mlwf-auth/pyproject.toml", _pyproject("mlwf-auth", ["requests-gssapi"])
    )
    _commit(tmp_path, "initial")
    return tmp_path


def _affected(repo: Path, *args: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, str(AFFECTED), *args],
        cwd=repo,
        check=False,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.splitlines()


def test_change_in_a_package_selects_it_and_its_transitive_dependents(repo: Path) -> None:
    """A change to mlwf-types selects every package that depends on it, directly or not."""
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, "packages/mlwf-types/src/mlwf_types/__init__.py", "x = 1\n")
    _commit(repo, "change types")
    assert _affected(repo, "main..HEAD") == [
        "mlwf-operators",
        "mlwf-stats-bridge",
        "mlwf-tuning",
        "mlwf-types",
    ]


def test_standalone_package_selects_only_itself(repo: Path) -> None:
    """A change to a package nobody depends on selects that package alone."""
    base = _git(repo, "rev-parse", "HEAD").strip()
    _write(repo, "packages/mlwf-auth/README.md", "# auth\n")
    head = _commit(repo, "auth docs")
    assert _affected(repo, base, head) == ["mlwf-auth"]


def test_leaf_package_does_not_select_its_dependencies(repo: Path) -> None:
    """A change to mlwf-tuning selects its dependents but not what it depends on."""
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, "packages/mlwf-tuning/CHANGELOG.md", "# Changelog\n")
    _commit(repo, "tuning")
    assert _affected(repo, "main...HEAD") == ["mlwf-stats-bridge", "mlwf-tuning"]


@pytest.mark.parametrize(
    "path",
    [
        "tooling/release.py",
        "noxfile.py",
        "uv.lock",
        "pyproject.toml",
        "testsupport/x.py",
        ".ci/run",
    ],
)
def test_shared_infrastructure_selects_every_package(repo: Path, path: str) -> None:
    """A change to tooling, the lock, the root config, test support or CI selects everything."""
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, path, "# changed\n")
    _commit(repo, f"change {path}")
    assert _affected(repo, "main..HEAD") == [
        "mlwf-auth",
        "mlwf-operators",
        "mlwf-stats-bridge",
        "mlwf-tuning",
        "mlwf-types",
    ]


def test_documentation_and_examples_select_no_package(repo: Path) -> None:
    """Changes to docs/, examples/, mkdocs.yml and the root README select no package."""
    _git(repo, "checkout", "-q", "-b", "feature")
    for path in [
        "docs/index.md",
        "examples/dags/a.py",
        "mkdocs.yml",
        "README.md",
        "benchmarks/README.md",
    ]:
        _write(repo, path, "changed\n")
    _commit(repo, "docs")
    assert _affected(repo, "main..HEAD") == []
    assert _affected(repo, "main..HEAD", "--json") == ["[]"]


def test_range_is_measured_from_the_merge_base(repo: Path) -> None:
    """Commits on the base branch after the fork point do not count as changes of the branch."""
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, "packages/mlwf-auth/src/mlwf_auth/__init__.py", "")
    _commit(repo, "auth")
    _git(repo, "checkout", "-q", "main")
    _write(repo, "packages/mlwf-types/src/mlwf_types/__init__.py", "y = 2\n")
    _commit(repo, "types on main")
    _git(repo, "checkout", "-q", "feature")
    assert _affected(repo, "main..feature") == ["mlwf-auth"]


def test_json_output_is_an_array_of_names(repo: Path) -> None:
    """--json prints one JSON array, sorted by name."""
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, "packages/mlwf-operators/src/mlwf_operators/__init__.py", "")
    _commit(repo, "operators")
    (line,) = _affected(repo, "main", "--json")
    assert json.loads(line) == ["mlwf-operators", "mlwf-stats-bridge", "mlwf-tuning"]


def test_unknown_revision_is_a_clear_error(repo: Path) -> None:
    """A revision that does not exist exits with status 2 and names the git command that failed."""
    completed = subprocess.run(
        [sys.executable, str(AFFECTED), "no-such-branch..HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "no-such-branch" in completed.stderr
    assert completed.stdout == ""
