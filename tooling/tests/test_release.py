"""release.py plan, prepare and tag on a real git repository that each test builds and commits to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from changelog import HEADING_BUMPS, ChangelogError, read_unreleased
from gitrepo import commit as _commit, git as _git, write as _write

RELEASE = Path(__file__).resolve().parent.parent / "release.py"
HEADER = "# Changelog\n\nAll notable changes.\n\n"


def _release(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE), "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _plan(repo: Path) -> dict[str, dict[str, object]]:
    completed = _release(repo, "plan", "--json")
    assert completed.returncode == 0, completed.stderr
    return {entry["name"]: entry for entry in json.loads(completed.stdout)}


def _package(repo: Path, name: str, version: str, dependencies: list[str], unreleased: str) -> None:
    deps = ", ".join(f'"{d}"' for d in dependencies)
    sources = "".join(f"\n{d.split('>')[0]} = {{ workspace = true }}" for d in dependencies)
    _write(
        repo,
        f"packages/{name}/pyproject.toml",
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
        f"\n[tool.uv.sources]{sources}\n",
    )
    _write(repo, f"packages/{name}/src/{name.replace('-', '_')}/__init__.py", "")
    _write(repo, f"packages/{name}/CHANGELOG.md", f"{HEADER}## Unreleased\n{unreleased}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A workspace: mlwf-types 1.2.3 <- mlwf-operators 0.4.0 (`mlwf-types>=1.2,<2`), mlwf-auth 0.1.0."""
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "dev@example.invalid")
    _git(tmp_path, "config", "user.name", "Dev")
    _git(tmp_path, "config", "commit.gpgsign", "false")
    _git(tmp_path, "config", "tag.gpgsign", "false")
    _write(
        tmp_path,
        "pyproject.toml",
        '[project]\nname = "root"\nversion = "0"\nrequires-python = ">=3.11"\n'
        "[tool.uv]\npackage = false\n"
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n',
    )
    _package(tmp_path, "mlwf-types", "1.2.3", [], "\n### Added\n- `check_dag`.\n")
    _package(
        tmp_path,
        "mlwf-operators",
        "0.4.0",
        ["mlwf-types>=1.2,<2"],
        "\n### Fixed\n- Serving.\n",
    )
    _package(tmp_path, "mlwf-auth", "0.1.0", [], "\n### Added\n- Kerberos.\n")
    _commit(tmp_path, "initial")
    return tmp_path


def _released(repo: Path) -> None:
    """Make every package of `repo` look released: empty Unreleased, one tag per version."""
    for name, version in (
        ("mlwf-types", "1.2.3"),
        ("mlwf-operators", "0.4.0"),
        ("mlwf-auth", "0.1.0"),
    ):
        _write(
            repo,
            f"packages/{name}/CHANGELOG.md",
            f"{HEADER}## Unreleased\n\n## {version} - 2026-01-01\n\n### Added\n- All.\n",
        )
    _commit(repo, "released")
    for name, version in (
        ("mlwf-types", "1.2.3"),
        ("mlwf-operators", "0.4.0"),
        ("mlwf-auth", "0.1.0"),
    ):
        _git(repo, "tag", "-a", "-m", f"{name} {version}", f"{name}/v{version}")


def test_never_released_packages_are_all_planned_at_their_version(repo: Path) -> None:
    """Without tags every package is in the plan, at the version in its pyproject.toml."""
    plan = _plan(repo)
    assert {name: entry["version"] for name, entry in plan.items()} == {
        "mlwf-auth": "0.1.0",
        "mlwf-operators": "0.4.0",
        "mlwf-types": "1.2.3",
    }
    assert plan["mlwf-types"]["reasons"] == ["never released"]
    assert plan["mlwf-types"]["tag"] == "mlwf-types/v1.2.3"
    table = _release(repo, "plan")
    assert table.returncode == 0
    assert "mlwf-types" in table.stdout and "never released" in table.stdout


def test_unchanged_and_tests_only_packages_are_not_planned(repo: Path) -> None:
    """After the tags, a change to a package's tests alone releases nothing."""
    _released(repo)
    _write(repo, "packages/mlwf-auth/tests/test_x.py", "def test() -> None: ...\n")
    _commit(repo, "a test")
    assert {n: e["version"] for n, e in _plan(repo).items()} == {
        "mlwf-auth": None,
        "mlwf-operators": None,
        "mlwf-types": None,
    }


@pytest.mark.parametrize(
    ("headings", "version"),
    [
        (["Fixed"], "1.2.4"),
        (["Security (issue 10)"], "1.2.4"),
        (["Fixed", "Added"], "1.3.0"),
        (["Changed (issue 12: structure)"], "1.3.0"),
        (["Removed"], "2.0.0"),
    ],
)
def test_unreleased_headings_choose_the_bump(repo: Path, headings: list[str], version: str) -> None:
    """The highest level among the `### ` headings under Unreleased decides the next version."""
    _released(repo)
    entries = "".join(f"\n### {h}\n- Something.\n" for h in headings)
    _write(
        repo,
        "packages/mlwf-types/CHANGELOG.md",
        f"{HEADER}## Unreleased\n{entries}\n## 1.2.3 - 2026-01-01\n",
    )
    _write(repo, "packages/mlwf-types/src/mlwf_types/__init__.py", "X = 1\n")
    _commit(repo, "change")
    assert _plan(repo)["mlwf-types"]["version"] == version


def test_breaking_before_1_0_is_a_minor_release(repo: Path) -> None:
    """A `**Breaking:**` entry bumps 0.4.0 to 0.5.0, not 1.0.0."""
    _released(repo)
    _write(
        repo,
        "packages/mlwf-operators/CHANGELOG.md",
        f"{HEADER}## Unreleased\n\n### Security\n- Hashes. **Breaking:** retrain.\n",
    )
    _write(repo, "packages/mlwf-operators/src/mlwf_operators/__init__.py", "X = 1\n")
    _commit(repo, "change")
    entry = _plan(repo)["mlwf-operators"]
    assert (entry["version"], entry["bump"]) == ("0.5.0", "minor")


def test_a_major_release_moves_the_dependents_range_and_releases_them(repo: Path) -> None:
    """mlwf-types 2.0.0 falls outside `>=1.2,<2`: mlwf-operators moves to `>=2.0,<3` as a patch."""
    _released(repo)
    _write(
        repo,
        "packages/mlwf-types/CHANGELOG.md",
        f"{HEADER}## Unreleased\n\n### Removed\n- `old`.\n",
    )
    _write(repo, "packages/mlwf-types/src/mlwf_types/__init__.py", "X = 1\n")
    _commit(repo, "remove old")
    plan = _plan(repo)
    assert plan["mlwf-types"]["version"] == "2.0.0"
    assert plan["mlwf-operators"]["version"] == "0.4.1"
    assert plan["mlwf-operators"]["requirement_updates"] == {
        "mlwf-types>=1.2,<2": "mlwf-types>=2.0,<3"
    }
    assert plan["mlwf-auth"]["version"] is None


def test_a_source_change_without_changelog_entries_is_refused(repo: Path) -> None:
    """A changed package with an empty Unreleased is marked, and prepare refuses the plan."""
    _released(repo)
    _write(repo, "packages/mlwf-auth/src/mlwf_auth/__init__.py", "X = 1\n")
    _commit(repo, "undocumented")
    assert "Unreleased is empty" in str(_plan(repo)["mlwf-auth"]["problem"])
    completed = _release(repo, "prepare")
    assert completed.returncode == 1
    assert "mlwf-auth" in completed.stderr and "Traceback" not in completed.stderr


def test_an_unknown_heading_is_a_clear_error(repo: Path) -> None:
    """`### Misc` under Unreleased names the file and line, exit 1, no traceback."""
    _write(repo, "packages/mlwf-auth/CHANGELOG.md", f"{HEADER}## Unreleased\n\n### Misc\n- x\n")
    _commit(repo, "misc")
    completed = _release(repo, "plan")
    assert completed.returncode == 1
    assert "mlwf-auth/CHANGELOG.md:7: unknown heading '### Misc'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_every_heading_used_in_the_repository_is_known() -> None:
    """Each package's ## Unreleased section parses: its headings all have a bump."""
    root = Path(__file__).resolve().parents[2]
    changelogs = sorted(root.glob("packages/*/CHANGELOG.md"))
    assert changelogs
    for changelog in changelogs:
        try:
            unreleased = read_unreleased(changelog)
        except ChangelogError as error:
            pytest.fail(str(error))
        assert set(unreleased.headings) <= set(HEADING_BUMPS)


def test_prepare_refuses_a_dirty_tree(repo: Path) -> None:
    """An uncommitted change stops prepare before it writes anything."""
    _write(repo, "notes.txt", "wip\n")
    completed = _release(repo, "prepare")
    assert completed.returncode == 1
    assert "not clean" in completed.stderr
    assert "## Unreleased\n\n### Added" in (repo / "packages/mlwf-types/CHANGELOG.md").read_text()


def test_prepare_then_tag_releases_in_one_commit_and_annotated_tags(repo: Path) -> None:
    """prepare bumps, dates the changelogs, moves ranges and locks in one commit; tag annotates."""
    _released(repo)
    _write(
        repo,
        "packages/mlwf-types/CHANGELOG.md",
        f"{HEADER}## Unreleased\n\n### Removed\n- `old`.\n\n## 1.2.3 - 2026-01-01\n",
    )
    _write(repo, "packages/mlwf-types/src/mlwf_types/__init__.py", "X = 1\n")
    subprocess.run(["uv", "lock", "--offline", "-q"], cwd=repo, check=True)
    _commit(repo, "remove old")
    head = _git(repo, "rev-parse", "HEAD").strip()

    completed = _release(repo, "prepare", "--date", "2026-12-05")
    assert completed.returncode == 0, completed.stderr
    assert _git(repo, "rev-parse", "HEAD~1").strip() == head  # one commit
    assert _git(repo, "status", "--porcelain") == ""
    assert (
        _git(repo, "log", "-1", "--format=%s") == "Release mlwf-operators 0.4.1, mlwf-types 2.0.0\n"
    )
    types_pyproject = (repo / "packages/mlwf-types/pyproject.toml").read_text()
    assert 'version = "2.0.0"' in types_pyproject
    operators = (repo / "packages/mlwf-operators/pyproject.toml").read_text()
    assert '"mlwf-types>=2.0,<3"' in operators and 'version = "0.4.1"' in operators
    changelog = (repo / "packages/mlwf-types/CHANGELOG.md").read_text()
    assert (
        "## Unreleased\n\n## 2.0.0 - 2026-12-05\n\n### Removed\n- `old`.\n\n## 1.2.3" in changelog
    )
    assert (
        "- Requires `mlwf-types>=2.0,<3`."
        in (repo / "packages/mlwf-operators/CHANGELOG.md").read_text()
    )
    lock = (repo / "uv.lock").read_text()
    assert 'name = "mlwf-types"\nversion = "2.0.0"' in lock
    assert "uv.lock" in _git(repo, "show", "--name-only", "--format=", "HEAD")

    tagged = _release(repo, "tag")
    assert tagged.returncode == 0, tagged.stderr
    assert tagged.stdout.split() == ["mlwf-operators/v0.4.1", "mlwf-types/v2.0.0"]
    assert _git(repo, "cat-file", "-t", "mlwf-types/v2.0.0").strip() == "tag"
    message = _git(repo, "tag", "-l", "--format=%(contents)", "mlwf-types/v2.0.0")
    assert message.startswith("mlwf-types 2.0.0\n\n### Removed\n- `old`.")
    assert {n: e["version"] for n, e in _plan(repo).items()} == {
        "mlwf-auth": None,
        "mlwf-operators": None,
        "mlwf-types": None,
    }
    again = _release(repo, "tag", "mlwf-types")
    assert again.returncode == 1 and "tagged already" in again.stderr
