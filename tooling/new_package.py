"""Create a new workspace package from the repo's template: `python tooling/new_package.py NAME "what it is for"`.

It writes `packages/mlwf-NAME/` (pyproject with a static version and complete metadata, README,
LICENSE, CHANGELOG with an Unreleased section, `src/mlwf_NAME/` with `__init__.py`, `__all__`,
`__version__` and `py.typed`, and a smoke test), and adds the package to the workspace root's dependencies so that
`uv run mlwf up` has the full system. Run `uv lock` afterwards. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[project]
name = "{dist}"
version = "0.1.0"
description = "{description}"
readme = "README.md"
license = "Apache-2.0"
license-files = ["LICENSE"]
requires-python = ">=3.11"
authors = [{{ name = "ML Workflows contributors" }}]
classifiers = [
    "Development Status :: 3 - Alpha",
    "Framework :: Apache Airflow",
    "Intended Audience :: Developers",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.11",
    "Typing :: Typed",
]
dependencies = [{dependencies}]

[dependency-groups]
test = [
    "pytest>=8",
    "mlwf-testsupport",
]

[tool.uv.sources]
mlwf-testsupport = {{ workspace = true }}{sources}

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]
"""

INIT = '''\
"""{dist}: {description}"""

from importlib.metadata import version as _version

__version__ = _version("{dist}")

__all__ = ["__version__"]
'''

SMOKE_TEST = '''\
"""Every public name of {module} imports."""

from __future__ import annotations

import {module}


def test_every_name_in_all_imports() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    assert [n for n in {module}.__all__ if not hasattr({module}, n)] == []
'''

README = """\
# {dist}

{description}.
"""

CHANGELOG = """\
# Changelog

All notable changes to {dist} are documented here. The format follows
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/); versions follow semantic versioning.
Release tags are `{dist}/vX.Y.Z`.

## Unreleased

### Added
- The package.
"""


def create(name: str, description: str, depends: list[str], root: Path = ROOT) -> Path:
    """Write the package folder and register it in the root pyproject; return the folder."""
    dist = f"mlwf-{name}"
    if not _NAME.match(name):
        raise SystemExit(
            f"new_package: {name!r} is not a valid name (lower-case words joined by '-')"
        )
    folder = root / "packages" / dist
    if folder.exists():
        raise SystemExit(f"new_package: {folder} already exists")
    module = dist.replace("-", "_")
    deps = [f'"{d}>=0.1,<1"' for d in depends]
    sources = "".join(f"\n{d} = {{ workspace = true }}" for d in depends)
    (folder / "src" / module).mkdir(parents=True)
    (folder / "tests").mkdir()
    values = {"dist": dist, "module": module, "description": description.rstrip(".")}
    (folder / "pyproject.toml").write_text(
        PYPROJECT.format(**values, dependencies=", ".join(deps), sources=sources)
    )
    (folder / "README.md").write_text(README.format(**values))
    # Every wheel ships its license (tooling/dist_check.py): the same text as the siblings'.
    shutil.copyfile(next(root.glob("packages/*/LICENSE")), folder / "LICENSE")
    (folder / "CHANGELOG.md").write_text(CHANGELOG.format(**values))
    (folder / "src" / module / "__init__.py").write_text(INIT.format(**values))
    (folder / "src" / module / "py.typed").write_text("")
    (folder / "tests" / "test_public_api.py").write_text(SMOKE_TEST.format(**values))
    _register_in_root(root / "pyproject.toml", dist)
    return folder


def _register_in_root(pyproject: Path, dist: str) -> None:
    text = pyproject.read_text()
    text = re.sub(
        r"(dependencies = \[\n(?:    .*\n)*?)(\])", rf'\1    "{dist}",\n\2', text, count=1
    )
    text = text.replace(
        "[tool.uv.sources]\n", f"[tool.uv.sources]\n{dist} = {{ workspace = true }}\n", 1
    )
    pyproject.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the part after 'mlwf-', e.g. 'stats-bridge'")
    parser.add_argument("description", help="one sentence: what the package is for")
    parser.add_argument(
        "--depends", action="append", default=[], help="a sibling it depends on (repeatable)"
    )
    args = parser.parse_args(argv)
    folder = create(args.name, args.description, args.depends)
    print(f"created {folder.relative_to(ROOT)}; now run `uv lock`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
