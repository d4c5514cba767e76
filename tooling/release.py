"""Release the workspace's packages, each on its own: plan, prepare, build, publish, tag.

Usage (through nox, which provides twine and packaging: `uv run nox -s release -- <command>`)::

    release.py plan [--json]                 # what would be released, at which version, and why
    release.py prepare [--date YYYY-MM-DD]   # bump versions, date the changelogs, move ranges; one commit
    release.py build [--out-dir dist] [PACKAGE ...]   # sdist + wheel, reproducible, checked
    release.py publish --index URL [--username NAME] [--out-dir dist] [PACKAGE ...]
    release.py tag [PACKAGE ...]             # annotated tags mlwf-<name>/vX.Y.Z on HEAD

A release tag `mlwf-<name>/vX.Y.Z` is the output of releasing a version that has no tag yet. The
rules (which changelog heading bumps what, how sibling ranges move) and the steps in order are in
docs/releasing.md. Exit status: 0 done, 1 refused (a dirty tree, a failed check), 2 a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.parse
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from changelog import ChangelogError, read_unreleased, release_section, start_release
from dist_check import check_project_metadata, check_sdist, check_wheel
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version
from workspace import Package, WorkspaceError, discover_packages, normalize_name

__all__ = ["Release", "ReleaseError", "build", "main", "plan", "prepare", "publish", "tag"]


class ReleaseError(Exception):
    """A release step refused to go on; the message says why and what to do."""


def _run(
    args: Sequence[str], cwd: Path, *, env: dict[str, str] | None = None, quiet: bool = True
) -> str:
    """Run a command; raise ReleaseError with its output if it fails."""
    try:
        completed = subprocess.run(
            list(args),
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            capture_output=quiet,
            text=True,
            check=False,
        )
    except FileNotFoundError as error:
        raise ReleaseError(f"{args[0]}: not found on PATH") from error
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout or "").strip()
        if "Traceback (most recent call last)" in output:
            output = output.splitlines()[-1]  # the exception, not the tool's internals
        detail = f": {output}" if quiet else ""
        raise ReleaseError(
            f"`{' '.join(args[:3])} ...` failed (exit {completed.returncode}){detail}"
        )
    return completed.stdout or ""


def _git(repo: Path, *args: str) -> str:
    return _run(["git", *args], repo)


def tag_name(name: str, version: str) -> str:
    """Return the release tag of `name` at `version`, e.g. `mlwf-types/v0.1.0`."""
    return f"{name}/v{version}"


def _tagged_versions(repo: Path, name: str) -> list[Version]:
    versions = []
    for tag in _git(repo, "tag", "--list", f"{name}/v*").split():
        try:
            versions.append(Version(tag.removeprefix(f"{name}/v")))
        except InvalidVersion:
            continue  # not a release tag
    return sorted(versions)


def _bumped(version: Version, bump: str) -> Version:
    major, minor, patch = (*version.release, 0, 0, 0)[:3]
    if bump == "major":
        return Version(f"{major + 1}.0.0")
    if bump == "minor":
        return Version(f"{major}.{minor + 1}.0")
    return Version(f"{major}.{minor}.{patch + 1}")


def _range_for(version: Version) -> str:
    """Return the sibling range a dependent moves to: this minor up to the next major."""
    major, minor = (*version.release, 0, 0)[:2]
    return f">={major}.{minor},<{major + 1}"


_REQUIREMENT_PARTS = re.compile(
    r"^(?P<name>\s*[A-Za-z0-9._-]+\s*(?:\[[^\]]*\])?)(?P<spec>[^;]*?)(?P<marker>\s*;.*)?$"
)


def _with_range(line: str, specifier: str) -> str:
    """Return the requirement `line` with its version specifier replaced (extras, marker kept)."""
    match = _REQUIREMENT_PARTS.match(line)
    assert match is not None, line  # `line` parsed as a Requirement already
    return f"{match.group('name')}{specifier}{match.group('marker') or ''}"


@dataclass
class Release:
    """One package in the release plan."""

    name: str
    current: str
    """The version in its pyproject.toml now."""
    released: str | None
    """The version of its newest release tag; None if it was never released."""
    version: str | None = None
    """The version it will be released at; None while it cannot be released (see `problem`)."""
    bump: str | None = None
    """`major`, `minor`, `patch`, or None (first release, or a version set by hand)."""
    reasons: list[str] = field(default_factory=list)
    requirement_updates: dict[str, str] = field(default_factory=dict)
    """Requirement string in its pyproject.toml -> the string it becomes."""
    problem: str | None = None


def _changed_since(repo: Path, package: Package, tag: str) -> list[str]:
    folder = package.folder.relative_to(repo).as_posix()
    output = _git(repo, "diff", "--name-only", tag, "HEAD", "--", folder)
    # Tests alone never make a release: users do not get them.
    return [p for p in output.splitlines() if p and not p.startswith(f"{folder}/tests/")]


def _own_release(repo: Path, package: Package) -> Release:
    current = Version(package.version)
    tagged = _tagged_versions(repo, package.name)
    release = Release(package.name, package.version, str(tagged[-1]) if tagged else None)
    changelog = package.folder / "CHANGELOG.md"
    unreleased = read_unreleased(changelog)
    if current not in tagged:
        if tagged and current < tagged[-1]:
            release.problem = f"version {current} is below the released {tagged[-1]}"
            return release
        release.version = package.version
        release.reasons.append(
            "never released" if not tagged else f"version {current} set by hand, not tagged"
        )
        if not unreleased.body:
            release.problem = "## Unreleased is empty: nothing to write under the release"
        return release
    changed = _changed_since(repo, package, tag_name(package.name, package.version))
    if not changed:
        return release
    bump = unreleased.bump
    if bump is None:
        release.problem = (
            f"{len(changed)} file(s) changed since {tag_name(package.name, package.version)} "
            "but ## Unreleased is empty: add the entries"
        )
        return release
    if current.major == 0 and bump == "major":
        bump = "minor"  # before 1.0 a breaking change bumps the minor version
    release.bump = bump
    release.version = str(_bumped(current, bump))
    release.reasons.append(
        f"{len(changed)} file(s) changed since {tag_name(package.name, package.version)}; "
        f"## Unreleased: {', '.join(dict.fromkeys(unreleased.headings)) or 'breaking'}"
    )
    return release


def _requirement_strings(package: Package) -> list[str]:
    project = tomllib.loads((package.folder / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]
    strings = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        strings.extend(extra)
    return strings


def plan(repo: Path) -> list[Release]:
    """Return the release plan of the workspace at `repo`: every package, in name order.

    A package is released when it was never released, when its version has no tag, or when
    files outside its tests/ changed since its newest tag (then its ## Unreleased entries choose
    the bump). A package whose requirement on a released sibling no longer admits the sibling's
    new version is released too, with that requirement moved (at least a patch bump).
    """
    packages = discover_packages(repo)
    releases = {name: _own_release(repo, package) for name, package in packages.items()}
    moved = True
    while moved:  # a moved range releases a dependent, whose dependents may then move
        moved = False
        for name, package in packages.items():
            release = releases[name]
            for line in _requirement_strings(package):
                requirement = Requirement(line)
                sibling = releases.get(normalize_name(requirement.name))
                if (
                    sibling is None
                    or sibling.version is None
                    or line in release.requirement_updates
                ):
                    continue
                new_version = Version(sibling.version)
                if requirement.specifier.contains(new_version, prereleases=True):
                    continue
                new = _with_range(line, _range_for(new_version))
                release.requirement_updates[line] = new
                release.reasons.append(f"requirement {line!r} -> {new!r}")
                if release.version is None and release.problem is None:
                    release.bump = "patch"
                    release.version = str(_bumped(Version(release.current), "patch"))
                moved = True
    return [releases[name] for name in sorted(releases)]


def format_plan(releases: list[Release]) -> str:
    """Return the plan as a plain-text table (packages without a release are listed too)."""
    rows = [("package", "released", "now", "next", "bump", "why")]
    for r in releases:
        next_version = r.version or ("REFUSED" if r.problem else "-")
        why = r.problem or "; ".join(r.reasons) or "unchanged since its tag"
        rows.append((r.name, r.released or "never", r.current, next_version, r.bump or "-", why))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True))
        + "  "
        + row[5]
        for row in rows
    )


def _release_to_json(release: Release) -> dict[str, object]:
    return {
        "name": release.name,
        "released": release.released,
        "current": release.current,
        "version": release.version,
        "bump": release.bump,
        "tag": tag_name(release.name, release.version) if release.version else None,
        "reasons": release.reasons,
        "requirement_updates": release.requirement_updates,
        "problem": release.problem,
    }


def _require_clean(repo: Path) -> None:
    dirty = _git(repo, "status", "--porcelain").splitlines()
    if dirty:
        raise ReleaseError(
            f"the work tree is not clean ({len(dirty)} path(s), e.g. {dirty[0].strip()!r}): "
            "commit or stash first, so that the release commit holds the release only"
        )


_PROJECT_VERSION = re.compile(r'(?ms)(^\[project\]\s*$.*?^version\s*=\s*")([^"]+)(")')


def _set_version(pyproject: Path, old: str, new: str) -> None:
    text = pyproject.read_text(encoding="utf-8")
    match = _PROJECT_VERSION.search(text)
    if match is None or match.group(2) != old:
        raise ReleaseError(f'{pyproject}: no `version = "{old}"` in [project]')
    text = text[: match.start(2)] + new + text[match.end(2) :]
    pyproject.write_text(text, encoding="utf-8")


def _move_requirements(pyproject: Path, updates: dict[str, str]) -> None:
    text = pyproject.read_text(encoding="utf-8")
    for old, new in updates.items():
        if f'"{old}"' not in text:
            raise ReleaseError(f"{pyproject}: requirement {old!r} not found as written")
        text = text.replace(f'"{old}"', f'"{new}"')
    pyproject.write_text(text, encoding="utf-8")


def prepare(repo: Path, date: str, *, lock: bool = True) -> list[Release]:
    """Apply the plan: versions, changelog sections, sibling ranges, uv.lock; one commit.

    Refuses a dirty tree and a plan with a refused package. Returns the releases made.
    """
    _require_clean(repo)
    releases = [r for r in plan(repo) if r.version is not None or r.problem is not None]
    refused = [r for r in releases if r.problem is not None]
    if refused:
        raise ReleaseError(
            "cannot prepare: " + "; ".join(f"{r.name}: {r.problem}" for r in refused)
        )
    if not releases:
        raise ReleaseError("nothing to release: no package changed since its tag")
    packages = discover_packages(repo)
    touched: list[Path] = []
    for release in releases:
        assert release.version is not None
        folder = packages[release.name].folder
        if release.version != release.current:
            _set_version(folder / "pyproject.toml", release.current, release.version)
        if release.requirement_updates:
            _move_requirements(folder / "pyproject.toml", release.requirement_updates)
        moved = "\n".join(f"- Requires `{new}`." for new in release.requirement_updates.values())
        start_release(
            folder / "CHANGELOG.md", release.version, date, fallback=f"### Changed\n{moved}"
        )
        touched += [folder / "pyproject.toml", folder / "CHANGELOG.md"]
    if lock and (repo / "uv.lock").is_file():
        _run(["uv", "lock"], repo)  # the workspace members' versions are in the lockfile
        touched.append(repo / "uv.lock")
    paths = [str(p.relative_to(repo)) for p in touched]
    _git(repo, "add", "--", *paths)
    summary = ", ".join(f"{r.name} {r.version}" for r in releases)
    body = "\n".join(
        f"- {r.name} {r.current} -> {r.version}: {'; '.join(r.reasons)}" for r in releases
    )
    _git(repo, "commit", "-q", "-m", f"Release {summary}", "-m", body, "--", *paths)
    return releases


def _selected(repo: Path, names: Sequence[str]) -> dict[str, Package]:
    packages = discover_packages(repo)
    unknown = sorted(set(names) - set(packages))
    if unknown:
        raise ReleaseError(f"no package named {unknown}; packages: {sorted(packages)}")
    return {n: packages[n] for n in (names or sorted(packages))}


def _artifacts(folder: Path) -> tuple[Path, Path]:
    wheels, sdists = sorted(folder.glob("*.whl")), sorted(folder.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise ReleaseError(
            f"{folder}: expected one wheel and one sdist, found {len(wheels)} and {len(sdists)}"
        )
    return wheels[0], sdists[0]


#: Host names of throwaway indexes besides loopback addresses (release_check's pypiserver, a
#: developer's own): no public page.
LOCAL_INDEX_HOSTS = frozenset({"localhost"})


def project_urls(wheel: Path) -> list[str]:
    """Return the ``Project-URL`` entries of `wheel`'s METADATA that hold an address."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next(
                (
                    n
                    for n in archive.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ),
                None,
            )
            if name is None:
                raise ReleaseError(f"{wheel}: no .dist-info/METADATA in the wheel")
            metadata = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise ReleaseError(f"{wheel}: cannot read its METADATA: {err}") from err
    # "Label, https://...": an entry without an address links nowhere either.
    return [
        entry for entry in metadata.get_all("Project-URL") or [] if entry.partition(",")[2].strip()
    ]


def is_local_index(index: str) -> bool:
    """Return whether the upload URL `index` is on this machine (loopback): a throwaway index.

    Raises ReleaseError for a URL that is not http(s) with a host, or that carries credentials
    or a backslash (parsers disagree on where such a URL goes; credentials belong in TWINE_*).
    """
    parts = urllib.parse.urlsplit(index)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReleaseError(f"--index {index!r}: expected an http(s) upload URL with a host")
    if "@" in parts.netloc or "\\" in index:
        raise ReleaseError(
            f"--index {index!r}: no user name, password or backslash in the URL "
            "(give them through --username / TWINE_USERNAME and TWINE_PASSWORD)"
        )
    host = parts.hostname.rstrip(".")
    if host in LOCAL_INDEX_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_public_metadata(index: str, wheels: Sequence[Path]) -> None:
    """Refuse to publish wheels without project URLs anywhere but a local index.

    The repository has no public address yet (docs/releasing.md, "Project URLs"): an index page
    without a source, documentation and changelog link is not a complete release, and an
    invented address would be published for good. A loopback index (tests, release_check) is
    throwaway, so it takes them as they are.
    """
    if is_local_index(index):
        return
    missing = [wheel.name for wheel in wheels if not project_urls(wheel)]
    if missing:
        host = urllib.parse.urlsplit(index).hostname
        raise ReleaseError(
            f"{', '.join(missing)}: no [project.urls] (source, documentation, changelog); "
            f"refusing to publish to {host!r}, whose page would link nowhere. "
            "Set them in each package's pyproject.toml first (docs/releasing.md, 'Project URLs'); "
            "a loopback index takes the packages as they are"
        )


def source_date_epoch(repo: Path) -> str:
    """Return $SOURCE_DATE_EPOCH, or the commit time of HEAD: the same sources, the same bytes."""
    return os.environ.get("SOURCE_DATE_EPOCH") or _git(repo, "log", "-1", "--format=%ct").strip()


def _twine(*args: str, cwd: Path, env: dict[str, str] | None = None, quiet: bool = True) -> str:
    try:
        import twine  # noqa: F401 (only: is it installed here?)
    except ImportError as error:
        raise ReleaseError(
            "twine is not installed in this environment: run through nox "
            "(`uv run nox -s release -- ...`), whose environment has it"
        ) from error
    return _run([sys.executable, "-m", "twine", *args], cwd, env=env, quiet=quiet)


def build(repo: Path, out_dir: Path, names: Sequence[str] = ()) -> list[Path]:
    """Build an sdist and a wheel of each package into `out_dir/<name>/`, then check them.

    Reproducible: SOURCE_DATE_EPOCH (default: HEAD's commit time) fixes every timestamp, so the
    same commit builds byte-identical files. `--no-sources`: the package builds as it will from
    its sdist, without the workspace's `[tool.uv.sources]`. Raises ReleaseError listing every
    problem of every artifact (dist_check) and `twine check --strict`'s complaints.
    """
    selected = _selected(repo, names)
    siblings = set(discover_packages(repo))
    epoch = source_date_epoch(repo)
    artifacts: list[Path] = []
    problems: list[str] = []
    for name, package in selected.items():
        folder = out_dir / name
        shutil.rmtree(folder, ignore_errors=True)
        _run(
            ["uv", "build", "--package", name, "--no-sources", "--out-dir", str(folder)],
            repo,
            env={"SOURCE_DATE_EPOCH": epoch},
        )
        wheel, sdist = _artifacts(folder)
        problems += check_project_metadata(package)
        problems += check_wheel(package, wheel, siblings - {name})
        problems += check_sdist(package, sdist)
        artifacts += [sdist, wheel]
    if problems:
        raise ReleaseError("the built artifacts are not publishable:\n  " + "\n  ".join(problems))
    _twine("check", "--strict", *map(str, artifacts), cwd=repo)
    return artifacts


def publish(
    repo: Path, out_dir: Path, index: str, names: Sequence[str] = (), *, username: str | None = None
) -> list[Path]:
    """Upload the built artifacts of `names` (default: all in `out_dir`) to `index` with twine.

    Refuses wheels without project URLs unless `index` is on loopback (`_require_public_metadata`).

    Credentials: `username` or $TWINE_USERNAME, and $TWINE_PASSWORD (never an argument, so it
    never shows in a process list or a log); twine reads them from its environment.
    """
    selected = _selected(repo, names)
    files = []
    for name in selected:
        folder = out_dir / name
        if not folder.is_dir():
            if names:
                raise ReleaseError(f"{folder}: not built; run `release.py build {name}` first")
            continue
        files += [str(p) for p in _artifacts(folder)]
    if not files:
        raise ReleaseError(f"{out_dir}: nothing built; run `release.py build` first")
    _require_public_metadata(index, [Path(f) for f in files if f.endswith(".whl")])
    username = username or os.environ.get("TWINE_USERNAME")
    if not username:
        raise ReleaseError(
            "no user name for the index: give --username or set TWINE_USERNAME "
            "(`__token__` with an API token in TWINE_PASSWORD)"
        )
    env = {"TWINE_USERNAME": username}
    _twine(
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        index,
        *files,
        cwd=repo,
        env=env,
    )
    return [Path(f) for f in files]


def tag(repo: Path, names: Sequence[str] = ()) -> list[str]:
    """Tag HEAD `mlwf-<name>/vX.Y.Z` for each package whose version has no tag yet.

    Each tag is annotated with the package's changelog section of that version. Refuses a dirty
    tree, and a package whose changelog has no section for its version (prepare was not run).
    """
    _require_clean(repo)
    selected = _selected(repo, names)
    pending = []
    for name, package in selected.items():
        if Version(package.version) in _tagged_versions(repo, name):
            if names:
                raise ReleaseError(f"{name} {package.version} is tagged already")
            continue
        notes = release_section(package.folder / "CHANGELOG.md", package.version)
        pending.append((tag_name(name, package.version), f"{name} {package.version}\n\n{notes}\n"))
    for name, message in pending:
        _git(repo, "tag", "--annotate", "--cleanup=verbatim", "-m", message, name, "HEAD")
    return [name for name, _ in pending]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="release.py",
        description="Release the workspace's packages, each on its own (docs/releasing.md).",
    )
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="a folder inside the git repository"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan_parser = commands.add_parser("plan", help="print what would be released, and why")
    plan_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    prepare_parser = commands.add_parser(
        "prepare", help="bump versions, date changelogs, move sibling ranges; one commit"
    )
    prepare_parser.add_argument(
        "--date",
        default=datetime.datetime.now(datetime.UTC).date().isoformat(),
        help="the release date in the changelogs (default: today, UTC)",
    )
    prepare_parser.add_argument(
        "--no-lock", action="store_true", help="do not run `uv lock` (the lockfile stays stale)"
    )
    for command, text in (
        ("build", "build and check sdists and wheels"),
        ("publish", "upload them"),
    ):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("packages", nargs="*", metavar="PACKAGE", help="default: every package")
        sub.add_argument("--out-dir", type=Path, default=Path("dist"), help="default: dist")
    publish_parser = commands.choices["publish"]
    publish_parser.add_argument("--index", required=True, help="the upload URL of the index")
    publish_parser.add_argument(
        "--username",
        help="default: $TWINE_USERNAME; the password is read from $TWINE_PASSWORD only",
    )
    tag_parser = commands.add_parser("tag", help="tag HEAD for every version without a tag")
    tag_parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="default: every package")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        repo = Path(_git(args.repo, "rev-parse", "--show-toplevel").strip())
        if args.command == "plan":
            releases = plan(repo)
            if args.json:
                print(json.dumps([_release_to_json(r) for r in releases], indent=2))
            else:
                print(format_plan(releases))
        elif args.command == "prepare":
            try:
                datetime.date.fromisoformat(args.date)
            except ValueError:
                print(f"release.py: --date {args.date!r} is not YYYY-MM-DD", file=sys.stderr)
                return 2
            made = prepare(repo, args.date, lock=not args.no_lock)
            print("prepared: " + ", ".join(f"{r.name} {r.version}" for r in made))
        elif args.command == "build":
            out_dir = args.out_dir if args.out_dir.is_absolute() else Path.cwd() / args.out_dir
            for path in build(repo, out_dir, args.packages):
                print(path)
        elif args.command == "publish":
            out_dir = args.out_dir if args.out_dir.is_absolute() else Path.cwd() / args.out_dir
            uploaded = publish(repo, out_dir, args.index, args.packages, username=args.username)
            print(f"uploaded {len(uploaded)} file(s) to {args.index}")
        elif args.command == "tag":
            made_tags = tag(repo, args.packages)
            print("\n".join(made_tags) if made_tags else "every version is tagged already")
            if made_tags:
                print(f"push them: git push origin {' '.join(made_tags)}", file=sys.stderr)
    except (ReleaseError, ChangelogError, WorkspaceError, InvalidVersion) as error:
        print(f"release.py {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
