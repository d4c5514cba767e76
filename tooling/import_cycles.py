"""Fail when a package's modules import each other in a circle: `python tooling/import_cycles.py PKG...`.

Run by `nox -s lint` on every package of `packages/*`. It reads the source statically with grimp
(import-linter's engine; nothing is imported) and counts every import: at module level, inside
functions and under `TYPE_CHECKING`. A function-level import that dodges a circle at run time
is still a circle in the design, and a module that imports its own package's `__init__` (which
imports it back) is one too. import-linter's `acyclic_siblings` contract (pyproject.toml) checks
the same at the level of sibling modules and subpackages; this check adds the circles through a
parent package, which that contract does not see.
"""

from __future__ import annotations

import argparse
import graphlib
import sys

import grimp


def find_cycle(package: str) -> list[str] | None:
    """Return one circle of imports among ``package``'s modules (first module repeated last), or None."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def main(argv: list[str] | None = None) -> int:
    """Check each package named on the command line; print each circle; 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="an importable package name")
    args = parser.parse_args(argv)
    failed = False
    for package in args.packages:
        try:
            cycle = find_cycle(package)
        except ValueError as err:  # grimp: the package cannot be found on sys.path
            print(f"{package}: {err}", file=sys.stderr)
            failed = True
            continue
        if cycle:
            print(f"{package}: import circle: {' -> '.join(cycle)}", file=sys.stderr)
            failed = True
        else:
            print(f"{package}: no import circles")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
