"""Check what a built wheel and sdist hold before anything is published.

Used by `release.py build` (and so by `nox -s build` and `nox -s release_check`). Each check
returns the problems it found as sentences naming the file; an empty list means the artifact
may be published. Standard library plus `packaging` (a dependency of nox and of the build tools).
"""

from __future__ import annotations

import email.message
import email.parser
import re
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from workspace import Package, normalize_name

__all__ = [
    "REQUIRED_CLASSIFIERS",
    "UNPUBLISHED",
    "WHEEL_ASSETS",
    "check_project_metadata",
    "check_sdist",
    "check_wheel",
]

#: Workspace members that are not published: they must never appear in a wheel's requirements.
UNPUBLISHED = frozenset({"mlwf-testsupport"})

#: Files a package's wheel must hold besides its Python modules (built assets).
WHEEL_ASSETS = {"mlwf-ui": ("mlwf_ui/static/main.js",)}

#: Path parts that never belong in a distribution: tests, byte code, tool caches.
_FORBIDDEN_PARTS = frozenset(
    {"tests", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"}
)


def _junk(names: Iterable[str], *, allow_tests: bool) -> list[str]:
    found = []
    for name in names:
        parts = PurePosixPath(name).parts
        forbidden = _FORBIDDEN_PARTS - ({"tests"} if allow_tests else set())
        if forbidden & set(parts) or name.endswith((".pyc", ".pyo")):
            found.append(name)
    return found


def _metadata(archive: zipfile.ZipFile) -> tuple[str, email.message.Message]:
    names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    if len(names) != 1:
        raise ValueError(f"{len(names)} .dist-info/METADATA files")
    text = archive.read(names[0]).decode("utf-8")
    return names[0].rsplit("/", 2)[0], email.parser.Parser().parsestr(text)


def _requirement_problems(wheel: Path, lines: list[str], siblings: Iterable[str]) -> list[str]:
    problems = []
    sibling_names = set(siblings)
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            problems.append(f"{wheel.name}: invalid requirement {line!r}: {error}")
            continue
        name = normalize_name(requirement.name)
        if requirement.url:
            problems.append(f"{wheel.name}: requirement {line!r} is a direct reference")
        if name in UNPUBLISHED:
            problems.append(f"{wheel.name}: requires unpublished {name!r}")
        if name in sibling_names:
            if not requirement.specifier:
                problems.append(f"{wheel.name}: sibling {name!r} needs a version range")
            if any(spec.operator in {"==", "==="} for spec in requirement.specifier):
                problems.append(f"{wheel.name}: sibling {name!r} pinned exactly ({line!r})")
    return problems


def check_wheel(package: Package, wheel: Path, siblings: Iterable[str]) -> list[str]:
    """Return what is wrong with `package`'s built `wheel` (empty: nothing).

    The wheel must be typed (`py.typed`), carry a license file and a `License-Expression` or
    `License` field, hold no tests, byte code or caches, hold the package's built assets
    (`WHEEL_ASSETS`), and require its `siblings` by version range only, never an unpublished
    workspace member or a direct reference.
    """
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        try:
            dist_info, metadata = _metadata(archive)
        except ValueError as error:
            return [f"{wheel.name}: {error}"]
    if f"{package.import_name}/py.typed" not in names:
        problems.append(f"{wheel.name}: no {package.import_name}/py.typed (PEP 561 marker)")
    licenses = [n for n in names if n.startswith(f"{dist_info}/licenses/")]
    if not licenses:
        problems.append(
            f"{wheel.name}: no license file in {dist_info}/licenses/ "
            f"(add packages/{package.name}/LICENSE)"
        )
    if not (metadata.get("License-Expression") or metadata.get("License")):
        problems.append(f"{wheel.name}: no License-Expression in its metadata")
    junk = _junk(names, allow_tests=False)
    if junk:
        problems.append(f"{wheel.name}: holds tests, byte code or caches: {sorted(junk)[:5]}")
    missing = set(WHEEL_ASSETS.get(package.name, ())) - set(names)
    if missing:
        problems.append(
            f"{wheel.name}: lacks {sorted(missing)} (build packages/{package.name}/frontend)"
        )
    problems += _requirement_problems(wheel, metadata.get_all("Requires-Dist") or [], siblings)
    return problems


def check_sdist(package: Package, sdist: Path) -> list[str]:
    """Return what is wrong with `package`'s `sdist`: no license file, or byte code or caches.

    An sdist may hold the package's tests (they are part of its source); byte code, tool caches
    and `node_modules` never belong in it.
    """
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    problems = []
    if not any(PurePosixPath(n).name.startswith(("LICENSE", "LICENCE")) for n in names):
        problems.append(f"{sdist.name}: no license file (add packages/{package.name}/LICENSE)")
    junk = _junk(names, allow_tests=True)
    if junk:
        problems.append(f"{sdist.name}: holds byte code or caches: {sorted(junk)[:5]}")
    return problems


#: Classifiers every package declares (its index page's facts); Python versions come with them.
REQUIRED_CLASSIFIERS = (
    "Development Status :: ",
    "Framework :: Apache Airflow",
    "Programming Language :: Python :: 3 :: Only",
    "Typing :: Typed",
)


def check_project_metadata(package: Package) -> list[str]:
    """Return what `package`'s pyproject.toml [project] lacks for a complete index page.

    A description, a Markdown readme that exists, an SPDX `license` with `license-files` that
    exist, `requires-python`, `authors`, and classifiers: a development status, the Airflow
    framework, `Python :: 3 :: Only` with at least one `Python :: 3.N`, and `Typing :: Typed`.
    """
    pyproject = package.folder / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    where = f"packages/{package.name}/pyproject.toml"
    problems = [
        f"{where}: [project] has no {key!r}"
        for key in (
            "description",
            "readme",
            "license",
            "license-files",
            "requires-python",
            "authors",
        )
        if not project.get(key)
    ]
    readme = project.get("readme")
    if isinstance(readme, str) and not (
        readme.endswith(".md") and (package.folder / readme).is_file()
    ):
        problems.append(f"{where}: readme {readme!r} is not a Markdown file of the package")
    if "license" in project and not isinstance(project["license"], str):
        problems.append(f"{where}: license must be an SPDX expression string (PEP 639)")
    for pattern in project.get("license-files", []):
        if not list(package.folder.glob(pattern)):
            problems.append(f"{where}: license-files {pattern!r} matches no file")
    classifiers = project.get("classifiers", [])
    for required in REQUIRED_CLASSIFIERS:
        if not any(c.startswith(required) for c in classifiers):
            problems.append(f"{where}: no classifier {required!r}")
    if not any(re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c) for c in classifiers):
        problems.append(f"{where}: no classifier 'Programming Language :: Python :: 3.N'")
    return problems
