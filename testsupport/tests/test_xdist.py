"""package_scheduler: a test package runs whole on one pytest-xdist worker, other modules by file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlwf_testsupport import top_package

CONFTEST = """
from mlwf_testsupport import package_scheduler

def pytest_xdist_make_scheduler(config, log):
    return package_scheduler(config, log)
"""

PACKAGE_CONFTEST = """
import json, os
from pathlib import Path

import pytest

@pytest.fixture(scope="package")
def shared():
    log = Path(__file__).parents[1] / "setups.log"
    with log.open("a") as out:
        out.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    return "shared"
"""

TEST_MODULE = """
import json, os, time
from pathlib import Path

def test_{name}_{index}(request{fixture}):
    time.sleep(0.3)  # long enough that both workers take work
    with (Path(request.config.rootpath) / "runs.log").open("a") as out:
        out.write(json.dumps([request.node.nodeid, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
"""


def _module(name: str, fixture: bool) -> str:
    return "\n".join(
        TEST_MODULE.format(name=name, index=i, fixture=", shared" if fixture else "")
        for i in range(3)
    )


def _runs(pytester: pytest.Pytester) -> dict[str, str]:
    lines = (pytester.path / "runs.log").read_text().splitlines()
    return {nodeid: worker for nodeid, worker in map(json.loads, lines)}


def test_a_package_runs_on_one_worker_and_sets_up_once(pytester: pytest.Pytester) -> None:
    """Three modules of a package share one worker and one package-scoped fixture setup; loose modules stay units of their own."""
    pytester.makeconftest(CONFTEST)
    package = pytester.mkpydir("shared_pkg")
    (package / "conftest.py").write_text(PACKAGE_CONFTEST)
    for name in ("alpha", "beta", "gamma"):
        (package / f"test_{name}.py").write_text(_module(name, fixture=True))
    for name in ("loose_one", "loose_two", "loose_three", "loose_four"):
        pytester.makepyfile(**{f"test_{name}": _module(name, fixture=False)})

    result = pytester.runpytest("-n", "2", "--dist", "loadfile", "-p", "no:randomly")

    result.assert_outcomes(passed=21)
    runs = _runs(pytester)
    in_package = {worker for nodeid, worker in runs.items() if nodeid.startswith("shared_pkg/")}
    assert len(in_package) == 1, runs
    assert (pytester.path / "setups.log").read_text().splitlines() == sorted(in_package)
    for name in ("loose_one", "loose_two", "loose_three", "loose_four"):  # still by file
        assert len({w for n, w in runs.items() if n.startswith(f"test_{name}.py")}) == 1, runs


def test_other_dist_modes_are_left_to_xdist(pytester: pytest.Pytester) -> None:
    """With --dist load the conftest hook steps aside: tests of one package may go to both workers."""
    pytester.makeconftest(CONFTEST)
    package = pytester.mkpydir("shared_pkg")
    (package / "conftest.py").write_text(PACKAGE_CONFTEST)
    (package / "test_alpha.py").write_text(
        "\n".join(TEST_MODULE.format(name="alpha", index=i, fixture=", shared") for i in range(12))
    )

    result = pytester.runpytest("-n", "2", "--dist", "load", "-p", "no:randomly")

    result.assert_outcomes(passed=12)
    assert set(_runs(pytester).values()) == {"gw0", "gw1"}


def test_top_package_is_the_outermost_folder_with_init(tmp_path: Path) -> None:
    """The unit of a module is its outermost package below the root, or None outside any package."""
    outer = tmp_path / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    (outer / "__init__.py").write_text("")
    (inner / "__init__.py").write_text("")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert top_package(inner / "test_x.py", tmp_path) == outer
    assert top_package(outer / "test_x.py", tmp_path) == outer
    assert top_package(plain / "test_x.py", tmp_path) is None
    assert top_package(tmp_path / "test_x.py", tmp_path) is None
    (tmp_path / "__init__.py").write_text("")  # the root itself never counts
    assert top_package(tmp_path / "test_x.py", tmp_path) is None
