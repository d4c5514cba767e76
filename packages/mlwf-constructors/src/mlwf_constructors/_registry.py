"""Discovery of constructors: the ``mlwf.constructors`` entry point group and DAG-bundle modules.

* Packages register ``name = "pkg.module:Class"`` in the entry point group ``mlwf.constructors``;
  the entry point's name is the constructor's reference and must equal ``Class.name``.
* Modules in the DAG folder are opt-in: ``[mlwf_constructors] bundle_modules`` lists module names
  importable from the DAG folder (e.g. ``team_constructors``); every ``DagConstructor`` subclass
  defined at their top level with a ``name`` is registered under that name. Opt-in because the
  process that serves the HTTP API (Airflow's api-server) then imports that code, which Airflow
  itself never does with DAG files.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from mlwf_constructors._constructor import DagConstructor
from mlwf_constructors._errors import ConstructorDefinitionError, ConstructorNotFoundError

ENTRY_POINT_GROUP = "mlwf.constructors"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class RegisteredConstructor:
    """A discovered constructor: its reference, class, import target and where it came from."""

    reference: str
    cls: type[DagConstructor]
    source: str  # "entry point <dist>" or "bundle module <name>"

    @property
    def target(self) -> str:
        """``module:qualname``: how a generated DAG file imports the class."""
        return f"{self.cls.__module__}:{self.cls.__qualname__}"

    @property
    def version(self) -> str:
        """The constructor's declared version."""
        return self.cls.version


def parse_bundle_modules(value: str | None) -> tuple[str, ...]:
    """Return the module names of a ``bundle_modules`` value: comma-separated, blanks ignored.

    Raises ConstructorDefinitionError naming ``[mlwf_constructors] bundle_modules`` and the
    entry when an entry is not a dotted Python module name.
    """
    modules = tuple(m.strip() for m in (value or "").split(",") if m.strip())
    for module_name in modules:
        if not _MODULE_NAME.fullmatch(module_name):
            raise ConstructorDefinitionError(
                f"[mlwf_constructors] bundle_modules: {module_name!r} is not a module name "
                f"(expected comma-separated dotted names such as team_constructors)"
            )
    return modules


def configured_bundle_modules() -> tuple[str, ...]:
    """Return the modules ``[mlwf_constructors] bundle_modules`` of the Airflow configuration opts in.

    What :class:`Settings.from_airflow <mlwf_constructors.Settings>` and every other reader of
    the option (such as mlwf-tuning's ``TuningConstructor``) pass to :func:`discover`; parsed by
    :func:`parse_bundle_modules`.
    """
    from airflow.configuration import conf

    return parse_bundle_modules(conf.get("mlwf_constructors", "bundle_modules", fallback=""))


def discover(
    bundle_modules: Iterable[str] = (), dags_folder: str | Path | None = None
) -> dict[str, RegisteredConstructor]:
    """Return every constructor by reference; raise ConstructorDefinitionError on a clash or bad entry."""
    found: dict[str, RegisteredConstructor] = {}

    def add(entry: RegisteredConstructor) -> None:
        if entry.reference in found and found[entry.reference].cls is not entry.cls:
            raise ConstructorDefinitionError(
                f"constructor name {entry.reference!r} is registered twice: by "
                f"{found[entry.reference].source} and by {entry.source}"
            )
        found[entry.reference] = entry

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {ep.name!r} ({ep.value})"
        try:
            cls = ep.load()
        except Exception as err:
            raise ConstructorDefinitionError(f"cannot load {source}: {err}") from err
        if not (inspect.isclass(cls) and issubclass(cls, DagConstructor)):
            raise ConstructorDefinitionError(f"{source} is not a DagConstructor subclass")
        if cls.name != ep.name:
            raise ConstructorDefinitionError(
                f"{source}: the class's name {cls.name!r} differs from the entry point name"
            )
        add(RegisteredConstructor(ep.name, cls, source))

    modules = [m.strip() for m in bundle_modules if m.strip()]
    if modules and dags_folder is not None and str(dags_folder) not in sys.path:
        sys.path.append(str(dags_folder))  # as Airflow's DAG processor does with a bundle path
    for module_name in modules:
        if not _MODULE_NAME.fullmatch(module_name):
            raise ConstructorDefinitionError(f"invalid bundle module name {module_name!r}")
        try:
            module = importlib.import_module(module_name)
        except Exception as err:
            raise ConstructorDefinitionError(
                f"cannot import bundle module {module_name!r}: {err}"
            ) from err
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, DagConstructor)
                and value.__module__ == module.__name__
                and value.name
            ):
                add(RegisteredConstructor(value.name, value, f"bundle module {module_name!r}"))
    return found


def lookup(registry: dict[str, RegisteredConstructor], reference: str) -> RegisteredConstructor:
    """Return the registered constructor or raise ConstructorNotFoundError."""
    try:
        return registry[reference]
    except KeyError:
        raise ConstructorNotFoundError(reference) from None
