"""InstanceSpec: one team's Airflow instance described in a short JSON file.

A spec says *what* a team runs (its name, service account, groups, database, executor and
broker, DAG folders, identity services, metrics, resources); :mod:`mlwf_instance._render` turns
it into configuration for a target (local processes, the official Helm chart, plain Kubernetes
manifests) and :mod:`mlwf_instance._instance` runs it here. Everything has a default, so a
team's file is about ten lines::

    {
      "name": "recsys",
      "service_account": "svc-recsys",
      "groups": {"admin": ["recsys-admins"], "users": ["recsys"]},
      "database": {"url": "postgresql://recsys@db.example.com/recsys_airflow",
                   "password": {"env": "RECSYS_DB_PASSWORD"}},
      "executor": "celery",
      "celery": {"workers": 2},
      "dag_folders": ["dags"]
    }

Secrets (a database password, a keytab path) are :class:`SecretRef` values: a literal string, or
``{"env": "NAME"}`` / ``{"file": "path"}`` read only when the instance runs or is rendered for a
target that needs the value. They are never printed: ``repr`` and error messages show where a
secret comes from, never what it is. Relative paths are relative to the spec file's folder.

The JSON schema (``mlwf instance schema``) and the reference page ``docs/mlwf-instance/spec.md``
are generated from the models below: every field's ``description`` is its documentation.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from mlwf_auth import DagRule, PolicyModel
from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from mlwf_instance._home import CONSTRUCTED_BUNDLE
from mlwf_instance._spec_errors import PATTERN_MESSAGES, SpecError, json_path, problems, spec_errors
from mlwf_instance._spec_owned import OWNED_AIRFLOW_OPTIONS, owned_option, same_option
from mlwf_instance._spec_parts import (
    _ACCOUNT,
    _CONFIG_NAME,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_PATH,
    MAX_SECRET_BYTES,
    MAX_SPEC_BYTES,
    Api,
    Celery,
    ComponentResources,
    DagFolder,
    Database,
    Groups,
    Kerberos,
    Ldap,
    Metrics,
    Name,
    Resources,
    SecretRef,
    SpecPath,
    _Model,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_SECRET_BYTES",
    "MAX_SPEC_BYTES",
    "OWNED_AIRFLOW_OPTIONS",
    "Api",
    "Celery",
    "ComponentResources",
    "Database",
    "DagFolder",
    "Groups",
    "InstanceSpec",
    "Kerberos",
    "Ldap",
    "Metrics",
    "Resources",
    "SecretRef",
    "SpecError",
    "default_home",
    "load_spec",
    "owned_option",
    "parse_spec",
    "rebase_spec",
    "spec_json_schema",
]


def _config_values(value: Any) -> Any:
    """Accept numbers and booleans as Airflow option values (Airflow reads every value as text)."""
    if not isinstance(value, dict):
        return value
    converted: dict[Any, Any] = {}
    for section, options in value.items():
        if isinstance(options, dict):
            options = {
                key: ("True" if v else "False")
                if isinstance(v, bool)
                else (str(v) if isinstance(v, int | float) else v)
                for key, v in options.items()
            }
        converted[section] = options
    return converted


ConfigValue = Annotated[str, StringConstraints(max_length=MAX_PATH)]


class InstanceSpec(_Model):
    """One team's Airflow instance."""

    JSON_FORMS: ClassVar[str | None] = 'a JSON object ({"name": …, …})'

    name: Name = Field(
        description="the instance's name: lowercase letters, digits and dashes, 2 to 40 characters "
        "(it names the instance home and its Kubernetes objects)"
    )
    service_account: Annotated[str, StringConstraints(pattern=_ACCOUNT)] | None = Field(
        default=None,
        description="the OS / Kubernetes account the components run as; none: the current user "
        "(local) or the chart's default",
    )
    groups: Groups = Field(
        default_factory=Groups, description="directory groups of the admin, user and viewer roles"
    )
    database: Database = Field(
        default_factory=Database,
        description='the metadata database: "sqlite", a URL, or {"url", "password", "create"}',
    )
    executor: Literal["local", "celery"] = Field(
        default="local",
        description='"local": tasks run beside the scheduler; "celery": on Celery workers (needs '
        "a server database)",
    )
    celery: Celery = Field(
        default_factory=Celery, description='workers and broker when executor is "celery"'
    )
    kerberos: Kerberos | None = Field(
        default=None, description="Kerberos principal and keytab; none: no Kerberos"
    )
    ldap: Ldap | None = Field(
        default=None, description="the LDAP directory of users and groups; none: no LDAP"
    )
    dag_rules: list[DagRule] | None = Field(
        default=None,
        max_length=1000,
        description="with ldap: who may do what on which DAGs (mlwf-auth rules: groups, dags, "
        "tags, bundles, actions); default: the users groups read, run and edit every DAG, the "
        "viewers groups read every DAG",
    )
    dag_folders: list[DagFolder] = Field(
        default_factory=lambda: [DagFolder(path=Path("dags"))],
        min_length=1,
        max_length=MAX_ITEMS,
        description="DAG folders, each a DAG bundle of its own; relative to the spec's folder",
    )
    metrics: Metrics = Field(default_factory=Metrics, description="metrics collection")
    api: Api = Field(default_factory=Api, description="where the API server and UI listen")
    resources: Resources = Field(
        default_factory=Resources,
        description="Kubernetes requests and limits per component (helm and kubernetes targets)",
    )
    home: SpecPath | None = Field(
        default=None,
        description="where `mlwf instance up` keeps the instance's files; relative to the spec's "
        "folder; default $XDG_STATE_HOME/mlwf/NAME (~/.local/state/mlwf/NAME)",
    )
    airflow_config: Annotated[
        dict[str, dict[str, ConfigValue]], BeforeValidator(_config_values)
    ] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="extra Airflow options, {section: {key: value}}; options the spec sets "
        "itself (executor, database, broker, DAG folders, secrets, …) are refused",
    )

    @field_validator("airflow_config")
    @classmethod
    def _check_config(cls, config: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        name = re.compile(_CONFIG_NAME)
        errors: list[tuple[tuple[int | str, ...], str]] = []
        for section, options in config.items():
            if not name.match(section):
                errors.append(((section,), f"not a section name: {PATTERN_MESSAGES[_CONFIG_NAME]}"))
                continue
            if len(options) > MAX_ITEMS:
                errors.append(((section,), f"at most {MAX_ITEMS} options allowed"))
                continue
            for key in options:
                if not name.match(key):
                    errors.append(
                        ((section, key), f"not an option name: {PATTERN_MESSAGES[_CONFIG_NAME]}")
                    )
                elif (owner := owned_option(section, key)) is not None:
                    errors.append(((section, key), f"set by {owner}"))
        if errors:
            raise problems(errors)
        return config

    @model_validator(mode="after")
    def _check_combinations(self) -> InstanceSpec:
        errors: list[tuple[tuple[int | str, ...], str]] = []
        if self.executor == "celery" and self.database.kind == "sqlite":
            errors.append(
                (
                    ("executor",),
                    '"celery" needs a server database (database: postgresql://… or mysql://…), '
                    "not sqlite",
                )
            )
        seen_names: dict[str, int] = {}
        seen_paths: dict[Path, int] = {}
        for index, folder in enumerate(self.dag_folders):
            if folder.name == CONSTRUCTED_BUNDLE:
                errors.append(
                    (
                        ("dag_folders", index, "name"),
                        f"{CONSTRUCTED_BUNDLE!r} is reserved for the DAGs of constructor instances",
                    )
                )
            elif folder.name is not None and folder.name in seen_names:
                errors.append(
                    (
                        ("dag_folders", index, "name"),
                        f"dag_folders[{seen_names[folder.name]}] has the same name",
                    )
                )
            if folder.name is not None:
                seen_names.setdefault(folder.name, index)
            if folder.path in seen_paths:
                errors.append(
                    (
                        ("dag_folders", index, "path"),
                        f"dag_folders[{seen_paths[folder.path]}] is the same folder",
                    )
                )
            seen_paths.setdefault(folder.path, index)
        if self.executor == "celery" and self.celery.broker == "database":
            # kombu's SQLAlchemy transport runs Celery's synchronous loop and billiard's classic
            # pool, whose idle processes share one job-queue lock; the autoscaler's shrinking
            # stops an idle process holding it, and the worker never runs a task again.
            errors.extend(
                (
                    ("airflow_config", section, key),
                    "Celery's autoscaler hangs the workers of the database broker "
                    "(docs/mlwf-instance/operations.md, 'Scaling workers')",
                )
                for section, options in self.airflow_config.items()
                for key in options
                if same_option(section, key, ("celery", "worker_autoscale"))
            )
        errors.extend(self._auth_errors())
        if self.metrics.port is not None and self.metrics.port == self.api.port:
            errors.append(
                (("metrics", "port"), f"the API server already listens on port {self.api.port}")
            )
        if errors:
            raise problems(errors)
        return self

    def _auth_errors(self) -> list[tuple[tuple[int | str, ...], str]]:
        """Login and access: what needs ldap, who administers, unencrypted directories."""
        errors: list[tuple[tuple[int | str, ...], str]] = []
        if self.ldap is None:
            if self.dag_rules is not None:
                errors.append((("dag_rules",), "needs ldap (rules apply to directory groups)"))
            if self.kerberos is not None and self.kerberos.http_keytab is not None:
                errors.append(
                    (("kerberos", "http_keytab"), "needs ldap (the users' groups come from it)")
                )
            return errors
        if self.dag_rules is not None:
            try:  # the bounds mlwf-auth checks when it starts (selectors in all)
                PolicyModel.model_validate({"rules": [r.model_dump() for r in self.dag_rules]})
            except ValidationError as err:
                errors.extend((("dag_rules",), e["msg"]) for e in err.errors()[:5])
        if self.ldap.user_filter is not None and "{user}" not in self.ldap.user_filter:
            errors.append((("ldap", "user_filter"), "must contain {user} (the user's name)"))
        if self.ldap.start_tls and self.ldap.url.startswith("ldaps://"):
            errors.append((("ldap", "start_tls"), "the URL is ldaps:// already"))
        kerberos = self.kerberos
        if kerberos is not None and kerberos.login_realms and kerberos.http_keytab is None:
            errors.append(
                (
                    ("kerberos", "login_realms"),
                    "needs http_keytab (Kerberos login is off without it)",
                )
            )
        if not self.groups.admin:
            errors.append(
                (
                    ("groups", "admin"),
                    "needs a group with ldap: nobody could administer the instance",
                )
            )
        host = (urlsplit(self.ldap.url).hostname or "").lower()
        plaintext_allowed = any(
            same_option(section, key, ("mlwf_auth", "ldap_allow_plaintext"))
            and str(value).strip().lower() in ("true", "1", "yes")
            for section, options in self.airflow_config.items()
            for key, value in options.items()
        )
        if (
            self.ldap.url.startswith("ldap://")
            and not self.ldap.start_tls
            and host not in ("127.0.0.1", "localhost", "::1")
            and not plaintext_allowed
        ):
            errors.append(
                (
                    ("ldap", "url"),
                    "not encrypted, and passwords would cross the network in clear: use "
                    "ldaps://, start_tls: true, or airflow_config.mlwf_auth.ldap_allow_plaintext",
                )
            )
        return errors

    def secrets(self) -> Iterator[tuple[str, SecretRef]]:
        """Yield every secret of the spec with its JSON path (``database.password``, …)."""
        candidates = [
            ("database.password", self.database.password),
            ("celery.broker_password", self.celery.broker_password),
            ("kerberos.keytab", self.kerberos.keytab if self.kerberos else None),
            ("kerberos.http_keytab", self.kerberos.http_keytab if self.kerberos else None),
            ("ldap.bind_password", self.ldap.bind_password if self.ldap else None),
        ]
        for path, ref in candidates:
            if ref is not None:
                yield path, ref


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers keys given more than once (the last would win)."""

    duplicates: list[str]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    found.duplicates = []
    if len(found) < len(pairs):
        keys = [key for key, _ in pairs]
        found.duplicates = [key for key in found if keys.count(key) > 1]
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _shape_errors(document: object) -> list[tuple[str, str]]:
    """Return problems of the document's shape: nesting deeper than MAX_DEPTH, duplicate keys.

    Iterative, so a hostile document nested thousands deep cannot exhaust the stack.
    """
    errors: list[tuple[str, str]] = []
    stack: list[tuple[object, tuple[int | str, ...]]] = [(document, ())]
    while stack:
        value, location = stack.pop()
        if len(location) >= MAX_DEPTH:
            if isinstance(value, dict | list):
                errors.append((json_path(location), f"nested more than {MAX_DEPTH} levels deep"))
            continue
        if isinstance(value, dict):
            for key in getattr(value, "duplicates", []):
                errors.append((json_path((*location, key)), "the key appears more than once"))
            stack.extend((v, (*location, str(k))) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, (*location, i)) for i, v in reversed(list(enumerate(value))))
    return errors


def parse_spec(document: object, source: str = "spec") -> InstanceSpec:
    """Validate a parsed JSON document; raise SpecError with every problem at once."""
    shape = _shape_errors(document)
    if shape:
        raise SpecError(source, shape)
    try:
        return InstanceSpec.model_validate(document)
    except ValidationError as err:
        raise SpecError(source, spec_errors(InstanceSpec, err)) from None
    except RecursionError:  # a document built in Python with a cycle
        raise SpecError(source, [("", "the document refers to itself")]) from None


def load_spec(path: str | Path) -> InstanceSpec:
    """Read and validate a spec file; relative paths in it become relative to its folder."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as err:
        raise SpecError(str(path), [("", f"cannot read the file: {err.strerror}")]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(str(path), [("", f"the file is larger than {MAX_SPEC_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")  # spec files are UTF-8 (a BOM is tolerated)
        document = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}: {err.msg}"
        raise SpecError(str(path), [("", f"not valid JSON ({where})")]) from None
    except RecursionError:
        raise SpecError(str(path), [("", f"nested more than {MAX_DEPTH} levels deep")]) from None
    except (UnicodeDecodeError, ValueError) as err:  # not UTF-8, NaN, a 5000-digit number
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else str(err)[:120]
        raise SpecError(str(path), [("", f"not valid JSON ({reason})")]) from None
    spec = parse_spec(document, str(path))
    return rebase_spec(spec, path.resolve().parent)


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _rebased_secret(ref: SecretRef | None, base: Path) -> SecretRef | None:
    if ref is None or ref.file is None:
        return ref
    return ref.model_copy(update={"file": _absolute(ref.file, base)})


def rebase_spec(spec: InstanceSpec, base: Path) -> InstanceSpec:
    """Return ``spec`` with its relative paths (DAG folders, home, secret files) made absolute."""
    folders = [f.model_copy(update={"path": _absolute(f.path, base)}) for f in spec.dag_folders]
    update: dict[str, Any] = {"dag_folders": folders}
    if spec.home is not None:
        update["home"] = _absolute(spec.home, base)
    update["database"] = spec.database.model_copy(
        update={"password": _rebased_secret(spec.database.password, base)}
    )
    update["celery"] = spec.celery.model_copy(
        update={"broker_password": _rebased_secret(spec.celery.broker_password, base)}
    )
    if spec.kerberos is not None:
        update["kerberos"] = spec.kerberos.model_copy(
            update={
                "keytab": _rebased_secret(spec.kerberos.keytab, base),
                "http_keytab": _rebased_secret(spec.kerberos.http_keytab, base),
            }
        )
    if spec.ldap is not None:
        ca_certs = spec.ldap.ca_certs_file
        update["ldap"] = spec.ldap.model_copy(
            update={
                "bind_password": _rebased_secret(spec.ldap.bind_password, base),
                "ca_certs_file": None if ca_certs is None else _absolute(ca_certs, base),
            }
        )
    return spec.model_copy(update=update)


def default_home(name: str) -> Path:
    """Return the default home of instance ``name``: ``$XDG_STATE_HOME/mlwf/NAME``."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mlwf" / name


def _object_schema(schema: dict[str, Any], model: type[_Model]) -> dict[str, Any] | None:
    """Return the object schema of ``model`` in ``schema`` (its $defs entry, or the root)."""
    node = schema if model is InstanceSpec else schema["$defs"].get(model.__name__)
    if node is None:
        return None
    for branch in node.get("anyOf", [node]):
        if "properties" in branch:
            found: dict[str, Any] = branch
            return found
    return None


def _add_factory_defaults(schema: dict[str, Any]) -> None:
    """Write the defaults pydantic leaves out (``default_factory`` ones) into the schema."""
    models: list[type[_Model]] = [InstanceSpec]
    while models:
        model = models.pop()
        node = _object_schema(schema, model)
        for name, field in model.model_fields.items():
            nested = field.annotation
            if isinstance(nested, type) and issubclass(nested, _Model) and nested not in models:
                models.append(nested)
            if node is None or field.default_factory is None:
                continue
            value = field.default_factory()  # type: ignore[call-arg]
            if isinstance(value, list):
                value = [
                    v.model_dump(mode="json", exclude_defaults=True) if isinstance(v, _Model) else v
                    for v in value
                ]
            elif isinstance(value, _Model):
                value = value.model_dump(mode="json")
            node["properties"][name]["default"] = value


def spec_json_schema() -> dict[str, Any]:
    """Return the JSON schema of a spec file (draft 2020-12)."""
    schema = InstanceSpec.model_json_schema()
    _add_factory_defaults(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlwf instance spec"
    schema["description"] = (
        "One team's Airflow instance (mlwf-instance). Every field has a default except name."
    )
    return schema
