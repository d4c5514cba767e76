"""Print the packages a git range affects: those changed plus their dependents, transitively.

Usage::

    python tooling/affected.py origin/main..HEAD        # one name a line
    python tooling/affected.py origin/main HEAD --json  # a JSON array

A range `A..B` (or `A...B`, or `A B`) is compared from the merge base of A and B to B, which is
what "the changes on this branch" means. A single revision `A` means `A..HEAD`.

Which paths affect which packages:

* `packages/<name>/**`: that package and every package that depends on it (read from the real
  metadata: dependencies, optional dependencies and dependency groups of each pyproject.toml).
* Documentation and material that no package's tests read: `docs/**`, `mkdocs.yml`, `*.md` at
  the top level, `benchmarks/**`, `examples/**` and `tests_integration/**`: no package. The
  `docs`, `benchmarks` and `tests_integration` nox sessions cover those and always run whole.
* Anything else (the root pyproject.toml, uv.lock, noxfile.py, tooling/, testsupport/, .ci/,
  any new top-level file): every package, because it can change how every package is built
  or tested. When unsure, test everything.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from workspace import WorkspaceError, dependents_closure, discover_packages

__all__ = ["affected_packages", "changed_files", "main"]

# Paths under these top-level folders affect no package's tests (see the module docstring).
NO_PACKAGE_FOLDERS = frozenset({"docs", "benchmarks", "examples", "tests_integration"})
NO_PACKAGE_FILES = frozenset({"mkdocs.yml", ".gitignore"})


class GitError(Exception):
    """A git command failed, e.g. because a revision of the range does not exist."""


def _git(repo: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {completed.stderr.strip()}")
    return completed.stdout


def _parse_range(revisions: Sequence[str]) -> tuple[str, str]:
    if len(revisions) == 2:
        return revisions[0], revisions[1]
    (spec,) = revisions
    for separator in ("...", ".."):
        if separator in spec:
            base, head = spec.split(separator, 1)
            return base or "HEAD", head or "HEAD"
    return spec, "HEAD"


def changed_files(repo: Path, base: str, head: str) -> list[str]:
    """Return the paths changed between the merge base of `base` and `head`, and `head`."""
    merge_base = _git(repo, "merge-base", base, head).strip()
    # --no-renames: a move touches both its old and its new folder.
    output = _git(repo, "diff", "--name-only", "--no-renames", merge_base, head)
    return [line for line in output.splitlines() if line]


def affected_packages(repo: Path, paths: Iterable[str]) -> list[str]:
    """Return the sorted names of the packages that changes to `paths` affect."""
    packages = discover_packages(repo)
    changed: set[str] = set()
    for path in paths:
        parts = PurePosixPath(path).parts
        if not parts:
            continue
        if parts[0] == "packages":
            if len(parts) > 2:
                # A deleted package is not in the glob any more: nothing left to test.
                changed.add(parts[1])
                continue
            return sorted(packages)  # a file directly in packages/: nobody owns it
        if parts[0] in NO_PACKAGE_FOLDERS and len(parts) > 1:
            continue
        if len(parts) == 1 and (path in NO_PACKAGE_FILES or path.endswith(".md")):
            continue
        return sorted(packages)
    return sorted(dependents_closure(packages, changed))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="affected.py",
        description="Print the packages changed in a git range plus their dependents.",
    )
    parser.add_argument(
        "revisions",
        nargs="+",
        metavar="RANGE",
        help="`BASE..HEAD`, `BASE...HEAD`, `BASE HEAD`, or `BASE` (meaning BASE..HEAD)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array of names")
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="a folder inside the git repository"
    )
    args = parser.parse_args(argv)
    if len(args.revisions) > 2:
        parser.error("give one range `BASE..HEAD` or two revisions `BASE HEAD`")
    try:
        repo = Path(_git(args.repo, "rev-parse", "--show-toplevel").strip())
        base, head = _parse_range(args.revisions)
        names = affected_packages(repo, changed_files(repo, base, head))
    except (GitError, WorkspaceError) as error:
        print(f"affected.py: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(names))
    else:
        for name in names:
            print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
