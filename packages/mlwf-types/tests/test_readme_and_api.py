"""The README example runs as printed, and every public name imports."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import mlwf_types

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_name_in_all_imports() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    missing = [name for name in mlwf_types.__all__ if not hasattr(mlwf_types, name)]
    assert missing == []


def test_readme_example_prints_what_it_claims() -> None:
    """The first code block of the README runs and prints the issue shown in its last comment."""
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    code = block.group(1)
    claimed = [line.removeprefix("# ") for line in code.splitlines() if line.startswith("# error:")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    assert out.getvalue().splitlines() == claimed
