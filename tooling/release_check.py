"""Prove that packages work as released: built, uploaded to an index, installed alone, tested.

Usage (through nox: `uv run nox -s release_check [-- RANGE | PACKAGE ...]`)::

    release_check.py [--lowest] [--smoke] [--work DIR] PACKAGE [PACKAGE ...]

For each PACKAGE it

1. builds the package and the siblings it requires (`release.py build`: reproducible, checked)
   and uploads them with twine to a throwaway pypiserver on 127.0.0.1 (`release.py publish`);
2. installs the package ALONE from that index into a fresh venv: siblings come from the local
   index only (uv's first-index strategy: a name found there is never taken from another
   index), third-party packages from the normal registry (uv's default index, or whatever
   UV_DEFAULT_INDEX / UV_INDEX_URL say, as for every other uv command here). The venv must hold
   no mlwf package the package does not declare; `mlwf-stats-bridge` gets its `airflow` extra,
   so it and `mlwf-types` are each shown to work beside Airflow with no other mlwf package;
   native extras (NATIVE_EXTRAS) are installed where their build tool is on PATH;
3. copies the package's folder WITHOUT its `src/` into a scratch tree (the repository's
   `examples/` and `docs/` copied beside it, for the tests that read them), checks that the
   package imports from the venv, and runs its own tests there with the venv's pytest;
4. with `--lowest`, does 2-3 again in a second venv resolved with `--resolution lowest-direct`
   over the package's own requirements and those of the extras it installs (siblings and Airflow
   at the lowest versions its ranges allow), printing the versions that were tested.

`--smoke` runs only the test files that check the public API (`test_public_api.py`,
`test_readme*.py`) instead of the whole suite (what CI runs: docs/releasing.md). `--system`
also builds and uploads every package, installs them all from the index into one venv and runs
`mlwf up` from it (`system_check.py`).
Exit status: 0 all passed, 1 a step failed (the message names the package and the step).
"""

from __future__ import annotations

import argparse
import email.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path

from local_index import LocalIndexError, local_index
from packaging.requirements import Requirement
from release import ReleaseError, build, publish
from system_check import SystemCheckError, check_system
from workspace import (
    REPO_ROOT,
    Package,
    WorkspaceError,
    buildable_native_extras,
    discover_packages,
    normalize_name,
    requirements_closure,
)

__all__ = ["CheckError", "check_package", "main"]

#: Extras installed with a package in its release check (see the module docstring, step 2).
EXTRAS = {"mlwf-stats-bridge": ("airflow",)}
#: Test files of `--smoke`: the public API and the README's example.
SMOKE_PATTERNS = ("test_public_api.py", "test_readme*.py")
#: Environment passed to the tests (as nox's `tests` session passes it).
PASSTHROUGH = ("MLWF_REQUIRE_SERVICES", "MLWF_UNIT_WORKERS", "PATH", "HOME", "LANG", "TMPDIR")
#: Top-level folders of the repository that package tests read, copied beside the package
#: (copies, not links: a test that resolves a path gets one inside the scratch tree).
SHARED_FOLDERS = ("examples", "docs")
#: Never copied into the scratch tree, at any depth: caches and the front end's npm install.
NOT_COPIED = frozenset({"__pycache__", ".pytest_cache", "node_modules"})


class CheckError(Exception):
    """A step of a package's release check failed."""


def _run(args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        raise CheckError(f"`{' '.join(args[:4])} ...` failed:\n{output[-4000:]}")
    return completed.stdout


def _wheel_requirements(wheel: Path, extras: Collection[str] = ()) -> list[str]:
    """Return the wheel's Requires-Dist lines: the unconditional ones and those of `extras`.

    A line of one of `extras` (`apache-airflow>=3.3,<4; extra == "airflow"`) is returned without
    its marker when the marker holds here for that extra, so that it can be named as a direct
    requirement: `--resolution lowest-direct` then tests its lower bound too (an extra's
    requirements are otherwise resolved as transitive ones, at their newest).
    """
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))
    lines = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or "extra" not in str(marker):
            lines.append(line)
        elif any(marker.evaluate({"extra": extra}) for extra in sorted(extras)):
            requirement.marker = None
            lines.append(str(requirement))
    return lines


def _test_requirements(package: Package) -> tuple[list[str], set[str]]:
    """Return the `test` group's requirements (testsupport as a path) and extras of the package itself.

    The extras are those the group names and the package's native extras this machine can build.
    """
    data = tomllib.loads((package.folder / "pyproject.toml").read_text(encoding="utf-8"))
    requirements, own_extras = [], set()
    own_extras.update(buildable_native_extras(data["project"].get("optional-dependencies", {})))
    for line in data.get("dependency-groups", {}).get("test", []):
        if not isinstance(line, str):
            continue
        requirement = Requirement(line)
        name = normalize_name(requirement.name)
        if name == package.name:
            own_extras |= requirement.extras  # e.g. mlwf-instance[postgres,...] in its own group
        elif name == "mlwf-testsupport":
            requirements.append(str(REPO_ROOT / "testsupport"))  # unpublished: from the workspace
        else:
            requirements.append(line)
    return requirements, own_extras


def _installed(python: Path) -> dict[str, str]:
    listing = _run(["uv", "pip", "list", "--format", "json", "--python", str(python)])
    return {normalize_name(e["name"]): e["version"] for e in json.loads(listing)}


def _scratch_tree(package: Package, work: Path) -> Path:
    """Copy the package folder without its src/ under `work/tree/packages/`, SHARED_FOLDERS beside it.

    Only the top-level src/ is left out: other folders of that name are not importable Python
    (mlwf-ui's `frontend/src/`, whose sources its tests compare with the installed bundle).
    """
    tree = work / "tree"
    target = tree / "packages" / package.name

    def ignored(directory: str, names: list[str]) -> set[str]:
        top = {"src"} if Path(directory) == package.folder else set()
        return {n for n in names if n in NOT_COPIED or n in top}

    shutil.copytree(package.folder, target, ignore=ignored)
    for name in SHARED_FOLDERS:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(
                REPO_ROOT / name, tree / name, ignore=shutil.ignore_patterns(*NOT_COPIED)
            )
    return target


def _install(
    package: Package, wheel: Path, index: str, venv: Path, *, lowest: bool, log: list[str]
) -> Path:
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    _run(["uv", "venv", "-q", "--python", python_version, str(venv)])
    python = venv / "bin" / "python"
    test_requirements, own_extras = _test_requirements(package)
    extras = sorted(own_extras | set(EXTRAS.get(package.name, ())))
    spec = f"{package.name}{'[' + ','.join(extras) + ']' if extras else ''}=={_version(wheel)}"
    index_args = ["--index", f"mlwf-local={index}simple/"]
    own = _wheel_requirements(wheel, extras)
    if lowest:
        # The package's own requirements (with those of the extras installed) as direct ones:
        # lowest-direct then picks the lowest version each range allows (siblings, Airflow),
        # and the newest for everything below.
        command = [*index_args, "--resolution", "lowest-direct", spec, *own, *test_requirements]
    else:
        command = [*index_args, spec, *test_requirements]
    _run(["uv", "pip", "install", "-q", "--python", str(python), *command])
    installed = _installed(python)
    declared = requirements_closure(discover_packages(REPO_ROOT), package.name) | {package.name}
    if extras:  # an extra may add siblings (mlwf-constructors[remote] -> mlwf-auth)
        declared |= {normalize_name(Requirement(r).name) for r in own}
    siblings = {n for n in installed if n.startswith("mlwf-") and n != "mlwf-testsupport"}
    if siblings - declared:
        raise CheckError(f"{package.name}: the venv holds undeclared {sorted(siblings - declared)}")
    direct = sorted({normalize_name(Requirement(r).name) for r in own} & set(installed))
    log.append(", ".join(f"{n} {installed[n]}" for n in direct))
    return python


def _version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def check_package(
    package: Package, wheel: Path, index: str, work: Path, *, lowest: bool, smoke: bool
) -> str:
    """Install `package` alone from `index` into a fresh venv and run its tests; return a summary."""
    log: list[str] = []
    kind = "lowest" if lowest else "latest"
    started = time.monotonic()
    python = _install(package, wheel, index, work / f"venv-{kind}", lowest=lowest, log=log)
    installed_at = time.monotonic()
    folder = _scratch_tree(package, work / kind)
    where = _run(
        [str(python), "-c", f"import {package.import_name} as m; print(m.__file__)"], cwd=folder
    ).strip()
    if not Path(where).is_relative_to(work / f"venv-{kind}"):
        raise CheckError(f"{package.name}: imported from {where}, not from the installed wheel")
    tests = ["tests"]
    if smoke:
        tests = sorted(
            {
                str(p.relative_to(folder))
                for pattern in SMOKE_PATTERNS
                for p in (folder / "tests").glob(pattern)
            }
        )
        if not tests:
            raise CheckError(f"{package.name}: no {' or '.join(SMOKE_PATTERNS)} in tests/")
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    completed = subprocess.run(
        [str(python), "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q", "--no-header"],
        cwd=folder,
        env=env,
        check=False,
    )
    if completed.returncode != 0:
        raise CheckError(f"{package.name} ({kind}): its tests failed against the installed wheel")
    return (
        f"{package.name} ({kind}): install {installed_at - started:.0f} s, "
        f"tests {time.monotonic() - installed_at:.0f} s; requirements: {log[0]}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="release_check.py",
        description="Build, upload to a local index, install each package alone, run its tests.",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")
    parser.add_argument(
        "--lowest", action="store_true", help="also test the lowest allowed versions"
    )
    parser.add_argument("--smoke", action="store_true", help="only the public-API test files")
    parser.add_argument(
        "--system",
        action="store_true",
        help="also install every package from the index and run `mlwf up` from them",
    )
    parser.add_argument(
        "--work", type=Path, help="keep the venvs and trees here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if not args.packages and not args.system:
        parser.error("name at least one PACKAGE, or --system")
    try:
        packages = discover_packages(REPO_ROOT)
        unknown = sorted(set(args.packages) - set(packages))
        if unknown:
            print(f"release_check.py: no package named {unknown}", file=sys.stderr)
            return 2
        needed = set(packages) if args.system else set(args.packages)
        needed |= set().union(*(requirements_closure(packages, n) for n in args.packages))
        with tempfile.TemporaryDirectory(prefix="mlwf-release-check-") as scratch:
            work = args.work or Path(scratch)
            dist = work / "dist"
            started = time.monotonic()
            build(REPO_ROOT, dist, sorted(needed))
            print(
                f"built {len(needed)} package(s) in {time.monotonic() - started:.0f} s", flush=True
            )
            with local_index(work / "index") as url:
                os.environ.setdefault("TWINE_USERNAME", "release-check")
                os.environ.setdefault("TWINE_PASSWORD", "unchecked")  # the local index checks none
                publish(REPO_ROOT, dist, url, sorted(needed))
                summaries = []
                for name in args.packages:
                    [wheel] = (dist / name).glob("*.whl")
                    for lowest in (False, True) if args.lowest else (False,):
                        summaries.append(
                            check_package(
                                packages[name],
                                wheel,
                                url,
                                work / name,
                                lowest=lowest,
                                smoke=args.smoke,
                            )
                        )
                        print(summaries[-1], flush=True)
                if args.system:
                    print("system check: every package from the index, then mlwf up", flush=True)
                    wheels = {n: next((dist / n).glob("*.whl")) for n in sorted(needed)}
                    summaries.append(
                        check_system(
                            [packages[n] for n in sorted(needed)], wheels, url, work / "system"
                        )
                    )
                    print(summaries[-1], flush=True)
        print(f"release check passed in {time.monotonic() - started:.0f} s:")
        print("\n".join(f"  {s}" for s in summaries))
    except (CheckError, ReleaseError, LocalIndexError, WorkspaceError, SystemCheckError) as error:
        print(f"release_check.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
