"""The one entry point for humans and CI: `uv run nox` runs every default session.

Sessions (`uv run nox -l` lists them):

* `tests(<package>)`: one per `packages/*` folder, in an environment holding only that
  package, its declared dependencies and its `test` dependency group.
* `tests_integration`: the whole workspace, `pytest tests_integration`.
* `tooling`: the tests of `tooling/` (affected-package detection, workspace discovery) and of
  `testsupport/` (the pytest plugin of the test suites).
* `lint`, `typecheck`, `docs`, `build`: ruff and import-linter (the dependency graph), mypy
  --strict, mkdocs --strict, sdists + wheels.
* `benchmarks` (not a default session: slow): every `benchmarks/*/run.py`, or those named in
  posargs (`uv run nox -s benchmarks -- <name> ...`), then their results against
  `benchmarks/targets.toml`; `benchmarks_check` (not default) checks the committed results only.
* `affected` (not a default session): `uv run nox -s affected -- origin/main..HEAD`.
* `release` (not default): `tooling/release.py` with the posargs (plan, prepare, build,
  publish, tag). `release_check` (default): the packages a branch affects (on main: those the
  release plan holds) built, uploaded to a throwaway pypiserver, installed alone from it and
  their public-API tests run there, at the latest and the lowest allowed versions
  (docs/releasing.md).

Environments are synced from uv.lock with `uv sync --frozen`, so they hold exactly the locked
versions, and `uv sync` removes anything else from a reused environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tooling"))

from workspace import (  # noqa: E402 (importable only once tooling/ is on the path)
    Package,
    buildable_native_extras,
    discover_packages,
    normalize_name,
    requirements_closure,
)

nox.needs_version = ">=2025.5"
nox.options.default_venv_backend = "uv"
# Reusing is safe and fast: every session starts with an exact `uv sync` of its environment.
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True
nox.options.sessions = [
    "tests",
    "tests_integration",
    "tooling",
    "lint",
    "typecheck",
    "docs",
    "build",
    "ui",
    "release_check",
]

PACKAGES: dict[str, Package] = discover_packages(ROOT)
PACKAGE_NAMES = sorted(PACKAGES)
# Passed through to the tests: with MLWF_REQUIRE_SERVICES=1 (CI) a missing service fails a test.
PASSTHROUGH_ENV = ("MLWF_REQUIRE_SERVICES", "MLWF_INTEGRATION_WORKERS", "MLWF_UNIT_WORKERS")


def _sync(session: nox.Session, *args: str) -> None:
    """Sync this session's environment from uv.lock (exactly: extraneous packages are removed)."""
    location = getattr(session.virtualenv, "location", None)
    if location is None:
        session.error("this session needs a virtual environment to sync into")
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": str(location)},
        external=True,
    )


def _extras_of(package: Package) -> set[str]:
    pyproject = tomllib.loads((package.folder / "pyproject.toml").read_text(encoding="utf-8"))
    return set(pyproject["project"].get("optional-dependencies", {}))


def _native_extras(packages: list[str]) -> list[str]:
    """Return ``--extra`` arguments for the native extras of ``packages`` this machine can build."""
    defined = set().union(*(_extras_of(PACKAGES[name]) for name in packages))
    return [arg for extra in buildable_native_extras(defined) for arg in ("--extra", extra)]


def _test_env() -> dict[str, str]:
    return {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}


def _installed_workspace_packages(session: nox.Session) -> set[str]:
    listing = session.run_install(
        "uv",
        "pip",
        "list",
        "--format",
        "json",
        "--python",
        str(Path(session.bin) / "python"),
        silent=True,
        stderr=None,  # uv's notes go to the terminal, not into the JSON
        external=True,
    )
    if not isinstance(listing, str):  # --no-install on a reused environment: nothing to check
        return set()
    installed = {normalize_name(entry["name"]) for entry in json.loads(listing)}
    return installed & set(PACKAGES)


@nox.session
@nox.parametrize("package", PACKAGE_NAMES, ids=PACKAGE_NAMES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests with only that package and its declared dependencies installed."""
    tests_folder = PACKAGES[package].folder / "tests"
    if not [*tests_folder.rglob("test_*.py"), *tests_folder.rglob("*_test.py")]:
        session.error(
            f"{package}: no test_*.py under packages/{package}/tests/; every package has tests, "
            "at least a smoke test that every name in __all__ imports"
        )
    _sync(session, "--package", package, "--group", "test", *_native_extras([package]))
    allowed = {package} | requirements_closure(PACKAGES, package)
    installed = _installed_workspace_packages(session)
    session.log(f"workspace packages in this environment: {', '.join(sorted(installed))}")
    undeclared = installed - allowed
    if undeclared:
        session.error(
            f"{package}: environment holds undeclared sibling(s) {sorted(undeclared)}; "
            "the test environment must hold only declared dependencies"
        )
    session.chdir(PACKAGES[package].folder)
    session.run(
        "pytest",
        "tests",
        *_parallelism(session.posargs, UNIT_WORKERS_ENV, durations=10),
        *session.posargs,
        env=_test_env(),
    )


@nox.session
def tests_integration(session: nox.Session) -> None:
    """Run the full-system tests in `tests_integration/` with the whole workspace installed."""
    folder = ROOT / "tests_integration"
    test_files = [*folder.rglob("test_*.py"), *folder.rglob("*_test.py")]
    if not test_files:
        session.skip("tests_integration/ holds no test_*.py file yet")
    _sync(session, "--all-packages", *_native_extras(PACKAGE_NAMES))
    session.run(
        "pytest",
        "tests_integration",
        *_parallelism(session.posargs, INTEGRATION_WORKERS_ENV, durations=25),
        *session.posargs,
        env=_test_env(),
    )


#: Integration test modules run this many at a time (pytest-xdist workers); each module (or test
#: package) starts its own Airflow processes on its own home, database and free ports. Most of a module's time is
#: spent waiting on Airflow (scheduler loops, health, DAG runs), so two run well on 2 cores.
INTEGRATION_WORKERS_ENV = "MLWF_INTEGRATION_WORKERS"
#: The same for each package's unit tests (two test files at a time; 1 turns xdist off).
UNIT_WORKERS_ENV = "MLWF_UNIT_WORKERS"


def _parallelism(posargs: list[str], workers_env: str, *, durations: int) -> list[str]:
    """Return pytest-xdist arguments: ``-n N --dist loadfile`` unless posargs choose ``-n``/``-p``.

    N is ``$workers_env`` (default 2; 0 or 1: no xdist). ``--durations`` always: CI time is a
    budget, and the slowest tests are where it goes.
    """
    report = [f"--durations={durations}"]
    if any(arg == "-n" or arg.startswith(("-n", "--numprocesses", "-p")) for arg in posargs):
        return report
    workers = os.environ.get(workers_env, "2")
    if workers in ("0", "1"):
        return report
    # loadfile: every test of a module runs on the same worker, so module-scoped fixtures
    # (instances, servers) are started once. tests_integration's conftest makes a test package
    # one unit too (mlwf_testsupport.package_scheduler): its package-scoped instance starts once.
    return ["-n", workers, "--dist", "loadfile", *report]


@nox.session
def tooling(session: nox.Session) -> None:
    """Run the tests of the repository tooling (`tooling/tests`) and of the test plugin (`testsupport/tests`)."""
    _sync(session, "--only-group", "dev")
    session.run("pytest", "tooling/tests", "testsupport/tests", *session.posargs)


def _unconstrained_packages() -> list[str]:
    """Return the import names of `packages/*` missing from the import-linter configuration.

    import-linter reads only the root pyproject.toml, where its lists are typed by hand: every
    package must be a root package, sit in a layer of the `layers` contract and be an ancestor
    of the `acyclic` contract.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    roots = set(config["importlinter"]["root_packages"])
    [layers] = [c for c in config["importlinter"]["contracts"] if c["id"] == "layers"]
    [acyclic] = [c for c in config["importlinter"]["contracts"] if c["id"] == "acyclic"]
    layered = {
        name.strip().strip("()")
        for layer in layers["layers"]
        for name in layer.replace(":", "|").split("|")
    }
    wanted = {PACKAGES[name].import_name for name in PACKAGE_NAMES}
    return sorted(wanted - (roots & layered & set(acyclic["ancestors"])))


@nox.session
def lint(session: nox.Session) -> None:
    """Check lint rules and formatting (ruff) and the package dependency graph (import-linter)."""
    _sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    unconstrained = _unconstrained_packages()
    if unconstrained:
        session.error(
            f"{unconstrained}: not under the import-linter contracts; add each to [tool.importlinter] "
            "root_packages, to a layer of the layers contract and to the ancestors of the "
            "acyclic contract in pyproject.toml "
            "(docs/contributing.md, 'Dependency graph')"
        )
    # import-linter reads the source statically (grimp) and imports nothing, so this environment
    # needs no package installed: the src folders and the repository root (for the folders
    # tests_integration/, benchmarks/, tooling/, namespace packages) on the path are enough.
    path = [str(PACKAGES[name].folder / "src") for name in PACKAGE_NAMES]
    env = {"PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    session.run("lint-imports", "--no-cache", "--no-logo", env=env)
    # Circles through a parent package too, which import-linter's acyclic_siblings does not see.
    imports = [PACKAGES[name].import_name for name in PACKAGE_NAMES]
    session.run("python", "tooling/import_cycles.py", *imports, env=env)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check every package's src/ and the tooling with mypy --strict."""
    _sync(session, "--all-packages", *_native_extras(PACKAGE_NAMES))
    sources = [str(PACKAGES[name].folder.relative_to(ROOT) / "src") for name in PACKAGE_NAMES]
    session.run("mypy", "--strict", *sources)
    session.run("mypy", "--strict", "testsupport/src")
    tools = ["workspace.py", "affected.py", "docs_hooks.py", "import_cycles.py"]
    tools += ["release.py", "changelog.py", "dist_check.py", "local_index.py", "release_check.py"]
    session.run("mypy", "--strict", *(f"tooling/{name}" for name in tools))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site in strict mode (every warning is an error)."""
    _sync(session, "--only-group", "dev")
    # NO_MKDOCS_2_WARNING: silences Material's banner about MkDocs 2, which is news, not a check.
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def build(session: nox.Session) -> None:
    """Build an sdist and a wheel of every package into dist/<name>/, then check them.

    `tooling/release.py build`: reproducible (SOURCE_DATE_EPOCH), `twine check --strict`, and
    each wheel's contents (py.typed, license, no tests or caches, built assets, sibling ranges).
    """
    _sync(session, "--only-group", "dev")
    session.run("python", "tooling/release.py", "build", "--out-dir", str(ROOT / "dist"))


@nox.session
def release(session: nox.Session) -> None:
    """Run `tooling/release.py` with the posargs: `nox -s release -- plan|prepare|build|publish|tag`."""
    if not session.posargs:
        session.error(
            "give a command: nox -s release -- plan (or prepare, build, publish, tag; --help)"
        )
    _sync(session, "--only-group", "dev")
    session.run("python", "tooling/release.py", *session.posargs)


def _release_candidates(session: nox.Session, targets: list[str]) -> list[str]:
    """Return the packages `release_check` covers: named ones, a range's affected ones, or the plan.

    Without targets: the packages `origin/main..HEAD` affects; where that range is empty (CI on
    main's own clone, or no origin), the packages of the release plan, i.e. those changed since
    their last tag: what main would release next (everything, while nothing is tagged).
    """
    if targets and all(name in PACKAGES for name in targets):
        return targets
    revisions = targets or ["origin/main..HEAD"]
    command = [sys.executable, "tooling/affected.py", *revisions, "--json"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0 and targets:
        session.error(completed.stderr.strip())
    names: list[str] = json.loads(completed.stdout) if completed.returncode == 0 else []
    if names or targets:
        session.log(f"packages affected by {' '.join(revisions)}: {', '.join(names) or 'none'}")
        return names
    command = [sys.executable, "tooling/release.py", "plan", "--json"]
    plan = json.loads(
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    )
    planned = [entry["name"] for entry in plan if entry["version"] is not None]
    session.log(f"origin/main..HEAD is empty; the release plan's packages: {', '.join(planned)}")
    return planned


@nox.session
def release_check(session: nox.Session) -> None:
    """Build, upload to a throwaway index, install each package alone and run its tests.

    `nox -s release_check [-- RANGE | PACKAGE ...] [--full] [--latest] [--no-system]`: by
    default each package's public-API tests (`--smoke`) at the latest and at the lowest allowed
    versions (`--lowest`), then every package installed from the index into one venv and `mlwf
    up` run from it (`--system`), about 7 minutes for all eight packages; `--full` runs whole
    test suites, `--latest` skips the lowest versions, `--no-system` the system check. See
    tooling/release_check.py and docs/releasing.md.
    """
    options = [arg for arg in session.posargs if arg.startswith("--")]
    targets = [arg for arg in session.posargs if not arg.startswith("--")]
    # Default (CI): the public-API tests, latest and lowest versions; `--full`: whole suites.
    if "--full" in options:
        options.remove("--full")
    elif "--smoke" not in options:
        options.append("--smoke")
    if "--latest" in options:
        options.remove("--latest")
    elif "--lowest" not in options:
        options.append("--lowest")
    if "--no-system" in options:
        options.remove("--no-system")
    elif "--system" not in options:
        options.append("--system")
    _sync(session, "--only-group", "dev")
    names = _release_candidates(session, targets)
    if not names:
        session.skip("no package affected: nothing to release-check")
    session.run("python", "tooling/release_check.py", *options, *names, env=_test_env())


#: Node.js the front end's tools need (Vite 8: ^20.19 or >= 22.12).
NODE_MINIMUM = (20, 19)


@nox.session(venv_backend="none")
def ui(session: nox.Session) -> None:
    """mlwf-ui's front end: type check, Vitest, and the committed bundle is what the sources build.

    Needs Node.js and npm (CI installs them; a machine with only Python and uv skips this, as
    the shipped bundle needs no Node to run). The build goes to a temporary folder and is
    compared byte for byte with ``packages/mlwf-ui/src/mlwf_ui/static``.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "Node.js and npm are not installed: mlwf-ui's front-end checks need them"
        if os.environ.get("MLWF_REQUIRE_SERVICES") == "1":
            session.error(reason)
        session.skip(reason)
    version = session.run("node", "--version", silent=True, external=True) or ""
    found = tuple(int(p) for p in str(version).strip().lstrip("v").split(".")[:2])
    if found < NODE_MINIMUM:
        session.error(f"Node.js {version.strip()} is too old; the front end needs >= 20.19")
    package = PACKAGES["mlwf-ui"].folder
    session.chdir(package / "frontend")
    session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
    session.run("npm", "run", "typecheck", external=True)
    session.run("npm", "test", external=True)
    committed = package / "src" / "mlwf_ui" / "static"
    with tempfile.TemporaryDirectory() as out:
        session.run("npx", "vite", "build", "--outDir", out, "--emptyOutDir", external=True)
        built = {p.relative_to(out): p.read_bytes() for p in Path(out).rglob("*") if p.is_file()}
        shipped = {
            p.relative_to(committed): p.read_bytes() for p in committed.rglob("*") if p.is_file()
        }
    differing = sorted(
        str(n) for n in built.keys() | shipped.keys() if built.get(n) != shipped.get(n)
    )
    if differing:
        session.error(
            f"the committed bundle differs from what the sources build ({', '.join(differing)}): "
            "run `npm ci && npm run build` in packages/mlwf-ui/frontend and commit the result"
        )
    session.log(f"bundle matches the sources: {', '.join(str(n) for n in sorted(built))}")


#: The benchmarks' shared method and the check of their targets (standard library only).
BENCHMARK_METHOD = ROOT / "testsupport" / "src" / "mlwf_testsupport" / "benchmark.py"


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run every `benchmarks/<name>/run.py` (or those named in posargs); each writes a JSON."""
    available = sorted(p.parent.name for p in (ROOT / "benchmarks").glob("*/run.py"))
    unknown = sorted(set(session.posargs) - set(available))
    if unknown:
        session.error(f"no benchmark named {unknown}; available: {available}")
    selected = list(session.posargs) or available
    if not selected:
        session.skip("benchmarks/ holds no <name>/run.py yet")
    _sync(session, "--all-packages", *_native_extras(PACKAGE_NAMES))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    for name in selected:
        started = time.time()
        session.run("python", f"benchmarks/{name}/run.py")
        result = results / f"{name}.json"
        if not result.is_file() or result.stat().st_mtime < started:
            session.error(f"benchmark {name!r} did not write {result.relative_to(ROOT)}")
        json.loads(result.read_text(encoding="utf-8"))  # a result must be valid JSON
    # Each result against its targets (benchmarks/targets.toml): a miss fails the session.
    session.run("python", str(BENCHMARK_METHOD), "check", *selected)


@nox.session(venv_backend="none")
def benchmarks_check(session: nox.Session) -> None:
    """Check the committed benchmark results against benchmarks/targets.toml (runs nothing).

    Fails unless every target (or those of the benchmarks named in posargs) is met by its whole
    95 % interval by a result measured on today's sources; says which are missed, not shown,
    stale or in an old layout. Standard library only: no environment to build.
    """
    session.run(sys.executable, str(BENCHMARK_METHOD), "check", *session.posargs, external=True)


@nox.session(venv_backend="none")
def affected(session: nox.Session) -> None:
    """Print the packages a git range affects: `nox -s affected -- origin/main..HEAD`."""
    if not session.posargs:
        session.error("give a git range: nox -s affected -- origin/main..HEAD")
    session.run(sys.executable, "tooling/affected.py", *session.posargs, external=True)
