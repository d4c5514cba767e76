"""import_cycles.py on small packages written by each test, run as lint runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "import_cycles.py"


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    folder = root / name
    folder.mkdir()
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(text, encoding="utf-8")


def _run(root: Path, *packages: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *packages],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root)},
        check=False,
    )


@pytest.mark.parametrize(
    ("modules", "circle"),
    [
        # at module level
        ({"__init__": "", "a": "from pkg import b\n", "b": "from pkg import a\n"}, True),
        # hidden inside a function
        ({"__init__": "", "a": "def f():\n    from pkg import b\n", "b": "import pkg.a\n"}, True),
        # only the type checker follows it
        (
            {
                "__init__": "",
                "a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import X\n",
                "b": "from pkg.a import *\nX = 1\n",
            },
            True,
        ),
        # through the parent package (import-linter's acyclic_siblings does not see this one)
        ({"__init__": "from pkg._impl import f\n", "_impl": "import pkg\nf = 1\n"}, True),
        # a chain without a circle
        ({"__init__": "from pkg import a\n", "a": "from pkg import b\n", "b": ""}, False),
    ],
)
def test_circles_are_found_wherever_the_import_stands(
    tmp_path: Path, modules: dict[str, str], circle: bool
) -> None:
    """Every circle fails with the modules named; a plain chain passes."""
    _package(tmp_path, "pkg", modules)
    result = _run(tmp_path, "pkg")
    if circle:
        assert result.returncode == 1, result.stdout
        assert "pkg: import circle: pkg" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "pkg: no import circles" in result.stdout


def test_an_unknown_package_fails_by_name(tmp_path: Path) -> None:
    """A package that cannot be found is an error naming it, not a pass."""
    result = _run(tmp_path, "no_such_package")
    assert result.returncode == 1
    assert "no_such_package" in result.stderr
