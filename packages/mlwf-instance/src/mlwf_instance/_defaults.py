"""Instance defaults contributed by installed packages: entry point group ``mlwf.instance.defaults``.

mlwf-instance hard-codes no sibling's setting. Each package that needs Airflow options (or
environment variables) on an instance contributes them itself::

    [project.entry-points."mlwf.instance.defaults"]
    mlwf_constructors = "mlwf_constructors.instance_defaults:instance_defaults"

The contract (also in ``docs/mlwf-instance/defaults.md``):

- The value is a callable taking one argument, a read-only *context* (:class:`DefaultsContext`:
  attributes ``name``, ``home``, ``airflow_home``, ``constructed_folder``,
  ``constructed_bundle``, ``metrics_dir``, ``metrics_enabled``, ``executor`` (``"local"`` |
  ``"celery"``), ``database_kind`` (``"sqlite"`` | ``"postgresql"`` | ``"mysql"``) and ``team``
  (a server database: the instance is shared). The contributing package never imports
  mlwf-instance: it reads the attributes it needs.
- It returns a mapping with up to two keys: ``"airflow_config"``, ``{section: {key: value}}``
  (strings), and ``"environment"``, ``{NAME: value}`` set in every component's environment.
  Return ``{}`` to contribute nothing (e.g. ``metrics_enabled`` is false).
- Precedence, lowest first: mlwf-instance's own options, contributions, the options the spec
  decides (executor, database, Celery), the spec's ``airflow_config``. Two contributions may
  not set the same option or variable to different values (InvalidConfigError names both).
- It is called once per instance start-up in the ``mlwf`` process: keep the module cheap to
  import and free of side effects; it must not read the metadata database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Literal

from mlwf_instance._errors import InvalidConfigError

#: The entry point group of packages' instance defaults.
DEFAULTS_GROUP = "mlwf.instance.defaults"


@dataclass(frozen=True)
class DefaultsContext:
    """What a package may know about the instance it contributes defaults to (read-only)."""

    #: The instance's name (the spec's ``name``).
    name: str
    #: The instance home (mode 0700).
    home: Path
    #: AIRFLOW_HOME of the instance (inside the home).
    airflow_home: Path
    #: Folder of the DAG bundle that holds generated DAG files (constructor instances).
    constructed_folder: Path
    #: Name of that DAG bundle.
    constructed_bundle: str
    #: A private folder for metrics files (PROMETHEUS_MULTIPROC_DIR of the stats bridge).
    metrics_dir: Path
    #: The spec's ``metrics.enabled``.
    metrics_enabled: bool
    executor: Literal["local", "celery"]
    database_kind: Literal["sqlite", "postgresql", "mysql"]
    #: Whether the instance runs on a server database, i.e. is shared by a team.
    team: bool


@dataclass(frozen=True)
class ContributedDefaults:
    """The merged contributions of every installed package."""

    airflow_config: dict[str, dict[str, str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    #: ``"[section] key"`` or ``$NAME`` → the entry point that set it (for error messages).
    sources: dict[str, str] = field(default_factory=dict)


def collect_defaults(
    context: DefaultsContext, points: list[EntryPoint] | None = None
) -> ContributedDefaults:
    """Call every ``mlwf.instance.defaults`` entry point and merge what they return.

    Raises InvalidConfigError naming the entry point whose contribution fails to load, raises,
    has the wrong shape, or contradicts another's.
    """
    merged = ContributedDefaults()
    found = points if points is not None else list(entry_points(group=DEFAULTS_GROUP))
    for point in sorted(found, key=lambda p: p.name):
        where = f"{DEFAULTS_GROUP} entry point {point.name} ({point.value})"
        try:
            contribute: Callable[[DefaultsContext], object] = point.load()
            result = contribute(context)
        except Exception as err:  # a broken package must be named, not crash with a traceback
            raise InvalidConfigError(f"{where} failed: {type(err).__name__}: {err}") from err
        _merge(merged, result, where)
    return merged


def _merge(merged: ContributedDefaults, result: object, where: str) -> None:
    if not isinstance(result, Mapping):
        raise InvalidConfigError(f"{where} returned {type(result).__name__}, not a mapping")
    unknown = set(result) - {"airflow_config", "environment"}
    if unknown:
        raise InvalidConfigError(
            f"{where} returned unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f'expected "airflow_config" and/or "environment"'
        )
    config = result.get("airflow_config", {})
    if not isinstance(config, Mapping):
        raise InvalidConfigError(f"{where}: airflow_config must be {{section: {{key: value}}}}")
    for section, options in config.items():
        if not isinstance(section, str) or not isinstance(options, Mapping):
            raise InvalidConfigError(f"{where}: airflow_config must be {{section: {{key: value}}}}")
        for key, value in options.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidConfigError(
                    f"{where}: [{section}] {key!r} must map a string to a string"
                )
            name = f"[{section.lower()}] {key.lower()}"
            current = merged.airflow_config.get(section.lower(), {}).get(key.lower())
            if current is not None and current != value:
                raise InvalidConfigError(
                    f"{where} sets {name} = {value!r}, but {merged.sources[name]} sets {current!r}"
                )
            merged.airflow_config.setdefault(section.lower(), {})[key.lower()] = value
            merged.sources.setdefault(name, where)
    environment = result.get("environment", {})
    if not isinstance(environment, Mapping):
        raise InvalidConfigError(f"{where}: environment must be {{NAME: value}}")
    for variable, value in environment.items():
        if not isinstance(variable, str) or not isinstance(value, str):
            raise InvalidConfigError(f"{where}: environment {variable!r} must be a string")
        name = f"${variable}"
        current = merged.environment.get(variable)
        if current is not None and current != value:
            raise InvalidConfigError(
                f"{where} sets {name}, but {merged.sources[name]} sets it differently"
            )
        merged.environment[variable] = value
        merged.sources.setdefault(name, where)
