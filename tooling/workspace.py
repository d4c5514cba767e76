"""Discover the workspace's packages from the `packages/*` glob and their real metadata.

The one place that answers "which packages exist and who depends on whom": the noxfile,
`affected.py` and the docs hook all read it, so no package list is ever typed by hand.
Standard library only, so it runs before any environment is synced.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NATIVE_EXTRAS",
    "buildable_native_extras",
    "REPO_ROOT",
    "Package",
    "WorkspaceError",
    "dependents_closure",
    "discover_packages",
    "normalize_name",
    "requirements_closure",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Extras that build native code against system headers, with the tool that finds those headers.
#: nox sessions and the release check include such an extra only where the tool is on PATH: a
#: fresh machine (Python and uv only) lacks both, and the tests that need the extra skip there;
#: CI installs the headers (`.ci/run`), and with MLWF_REQUIRE_SERVICES=1 those tests fail instead.
NATIVE_EXTRAS = {"kerberos": "krb5-config"}  # gssapi (mlwf-auth): MIT krb5, Debian libkrb5-dev


def buildable_native_extras(defined: Iterable[str]) -> list[str]:
    """Return those of the extras ``defined`` that are native and buildable here (tool on PATH)."""
    wanted = set(defined)
    return [e for e, tool in NATIVE_EXTRAS.items() if e in wanted and shutil.which(tool)]


# PEP 508: a requirement starts with its distribution name.
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


class WorkspaceError(Exception):
    """A package folder whose metadata cannot be read."""


def normalize_name(name: str) -> str:
    """Return the PEP 503 normalized form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One distribution under `packages/`, as its pyproject.toml declares it."""

    name: str
    """Normalized distribution name, e.g. `mlwf-types`."""
    folder: Path
    """The package folder, e.g. `<repo>/packages/mlwf-types`."""
    version: str
    description: str
    requirements: tuple[str, ...] = field(default=())
    """Distribution names (normalized) required by dependencies, extras and dependency groups."""

    @property
    def import_name(self) -> str:
        """Return the flat import name, e.g. `mlwf_types`."""
        return self.name.replace("-", "_")


def _requirement_names(requirements: Iterable[object]) -> set[str]:
    names: set[str] = set()
    for requirement in requirements:
        # Dependency groups may hold `{include-group = "..."}` tables: those name no distribution.
        if isinstance(requirement, str) and (match := _REQUIREMENT_NAME.match(requirement)):
            names.add(normalize_name(match.group(1)))
    return names


def _read_package(folder: Path) -> Package:
    pyproject = folder / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise WorkspaceError(f"{pyproject}: cannot read package metadata: {error}") from error
    project = data.get("project")
    if not isinstance(project, dict) or "name" not in project:
        raise WorkspaceError(f"{pyproject}: no [project] table with a `name`")
    name = normalize_name(str(project["name"]))
    if name != folder.name:
        raise WorkspaceError(
            f"{pyproject}: distribution {name!r} must live in a folder of the same name, "
            f"not {folder.name!r}"
        )
    requirements = _requirement_names(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements |= _requirement_names(extra)
    for group in data.get("dependency-groups", {}).values():
        requirements |= _requirement_names(group)
    requirements.discard(name)
    return Package(
        name=name,
        folder=folder,
        version=str(project.get("version", "")),
        description=str(project.get("description", "")),
        requirements=tuple(sorted(requirements)),
    )


def discover_packages(root: Path = REPO_ROOT) -> dict[str, Package]:
    """Return every package of `root/packages/*` (a folder with a pyproject.toml), by name."""
    folders = sorted(p.parent for p in (root / "packages").glob("*/pyproject.toml"))
    packages = (_read_package(folder) for folder in folders)
    return {package.name: package for package in packages}


def dependents_closure(packages: dict[str, Package], changed: Iterable[str]) -> set[str]:
    """Return `changed` plus every package that depends on one of them, transitively."""
    dependents: dict[str, set[str]] = {name: set() for name in packages}
    for package in packages.values():
        for requirement in package.requirements:
            if requirement in dependents:
                dependents[requirement].add(package.name)
    result: set[str] = set()
    pending = [name for name in changed if name in packages]
    while pending:
        name = pending.pop()
        if name not in result:
            result.add(name)
            pending.extend(dependents[name])
    return result


def requirements_closure(packages: dict[str, Package], name: str) -> set[str]:
    """Return the workspace packages that `name` requires, transitively (without itself)."""
    result: set[str] = set()
    pending = [r for r in packages[name].requirements if r in packages]
    while pending:
        requirement = pending.pop()
        if requirement not in result:
            result.add(requirement)
            pending.extend(r for r in packages[requirement].requirements if r in packages)
    result.discard(name)
    return result
