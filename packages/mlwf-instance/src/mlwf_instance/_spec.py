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
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from mlwf_instance._errors import MlwfInstanceError

#: Bound of a spec file: a team's spec is about ten lines; nothing legitimate comes near this.
MAX_SPEC_BYTES = 256 * 1024
#: Bound of the number of entries in any list or mapping of a spec.
MAX_ITEMS = 64

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]
GroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
]
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$")


class SpecError(MlwfInstanceError, ValueError):
    """A spec is invalid; :attr:`errors` holds every problem as ``(json_path, message)``."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {path or '(top level)'}: {message}" for path, message in errors)
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{source}: {count}\n{lines}")
        self.source = source
        self.errors = errors


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt "wokers" must not silently mean the default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret comes from: exactly one of ``value``, ``env`` or ``file``.

    In JSON a plain string is a literal value; ``{"env": "NAME"}`` reads an environment
    variable and ``{"file": "path"}`` a file (its content with the trailing newline removed).
    """

    value: str | None = Field(default=None, repr=False)
    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [n for n in ("value", "env", "file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError('give exactly one of a string, {"env": NAME} or {"file": PATH}')
        return self

    def describe(self) -> str:
        """Say where the secret comes from, without its value."""
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "a literal value in the spec"

    def resolve(self, base: Path | None = None) -> str:
        """Return the secret's value; raise SpecError naming its source (never the value)."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            found = os.environ.get(self.env)
            if found is None:
                raise SpecError("secret", [("", f"environment variable {self.env} is not set")])
            return found
        assert self.file is not None
        path = self.file if base is None or self.file.is_absolute() else base / self.file
        try:
            return path.read_text().rstrip("\n")
        except OSError as err:
            raise SpecError("secret", [("", f"cannot read {path}: {err.strerror}")]) from err

    def __repr__(self) -> str:
        return f"SecretRef({self.describe()})"

    __str__ = __repr__


class Groups(_Model):
    """The directory groups of an instance's three roles (used by the mlwf-auth auth manager)."""

    admin: list[GroupName] = Field(default_factory=list, max_length=MAX_ITEMS)
    users: list[GroupName] = Field(default_factory=list, max_length=MAX_ITEMS)
    viewers: list[GroupName] = Field(default_factory=list, max_length=MAX_ITEMS)


DatabaseKind = Literal["sqlite", "postgresql", "mysql"]
_SCHEMES: dict[str, DatabaseKind] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}


class Database(_Model):
    """The metadata database: ``"sqlite"`` (a file in the home) or a server URL.

    A server URL may carry its password; better give it in ``password`` (a SecretRef) so the
    spec file holds none. ``create``: create the database on ``mlwf instance up`` if missing
    (needs the right to create databases on the server).
    """

    url: str = "sqlite"
    password: SecretRef | None = None
    create: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if url == "sqlite":
            return url
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in _SCHEMES:
            raise ValueError(
                f"scheme {parts.scheme + '://' if parts.scheme else '(none)'} is not supported: "
                f'use "sqlite", postgresql://… or mysql://… (MariaDB too)'
            )
        if "+" in parts.scheme:
            raise ValueError(
                f"give the URL without a driver ({scheme}://…, not {parts.scheme}://…): "
                "mlwf picks the drivers Airflow needs"
            )
        if not parts.hostname:
            raise ValueError("the URL names no host")
        if not parts.path.strip("/"):
            raise ValueError("the URL names no database (…/DATABASE)")
        return url

    @property
    def kind(self) -> DatabaseKind:
        """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB is ``mysql``)."""
        if self.url == "sqlite":
            return "sqlite"
        return _SCHEMES[urlsplit(self.url).scheme]

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        shown = self.url
        if parts.password:
            shown = shown.replace(f":{parts.password}@", ":***@", 1)
        return f"Database(url={shown!r}, password={self.password!r}, create={self.create})"

    __str__ = __repr__


class Celery(_Model):
    """Celery workers and their broker (used when ``executor`` is ``celery``)."""

    broker: str = Field(
        default="database",
        description='"database" (kombu\'s SQLAlchemy transport on the metadata database: no '
        "extra service), or a redis://, rediss:// or amqp:// URL",
    )
    broker_password: SecretRef | None = None
    workers: int = Field(default=2, ge=1, le=MAX_ITEMS)
    concurrency: int = Field(default=4, ge=1, le=256)
    queues: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]] = Field(
        default_factory=lambda: ["default"], min_length=1, max_length=MAX_ITEMS
    )

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, broker: str) -> str:
        if broker == "database":
            return broker
        scheme = urlsplit(broker).scheme
        if scheme not in ("redis", "rediss", "amqp", "amqps"):
            raise ValueError(
                f'"{broker.split("://", 1)[0]}" is not a broker: use "database", redis://… or amqp://…'
                if "://" in broker
                else 'use "database", redis://HOST:PORT/DB or amqp://USER@HOST:PORT/VHOST'
            )
        return broker

    def __repr__(self) -> str:
        parts = urlsplit(self.broker)
        shown = (
            self.broker.replace(f":{parts.password}@", ":***@", 1)
            if parts.password
            else self.broker
        )
        return (
            f"Celery(broker={shown!r}, workers={self.workers}, concurrency={self.concurrency}, "
            f"queues={self.queues!r})"
        )

    __str__ = __repr__


class Kerberos(_Model):
    """The instance's Kerberos identity: its service principal and keytab."""

    principal: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]
    keytab: SecretRef


class Ldap(_Model):
    """The LDAP directory where users and their groups are looked up."""

    url: Annotated[str, StringConstraints(pattern=r"^ldaps?://[^/\s]+$")]
    user_base: str
    group_base: str
    bind_dn: str | None = None
    bind_password: SecretRef | None = None


class DagFolder(_Model):
    """One DAG folder, run as its own DAG bundle (a plain string is a path)."""

    path: Path
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,200}$")] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class Metrics(_Model):
    """The mlwf-stats-bridge metrics of the instance."""

    enabled: bool = True
    #: Port of a separate ``/metrics`` exposure for Prometheus; None: served by the API server only.
    port: int | None = Field(default=None, ge=1, le=65535)


class Api(_Model):
    """Where the API server (and UI) listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    #: The public URL when the server sits behind a proxy; default ``http://HOST:PORT``.
    base_url: str | None = None


Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")]


class ComponentResources(_Model):
    """Kubernetes requests and limits of one component (e.g. ``{"cpu": "500m", "memory": "1Gi"}``)."""

    requests: dict[Literal["cpu", "memory"], Quantity] = Field(default_factory=dict)
    limits: dict[Literal["cpu", "memory"], Quantity] = Field(default_factory=dict)


class Resources(_Model):
    """Kubernetes resources per component (targets helm and kubernetes only)."""

    api_server: ComponentResources = Field(default_factory=ComponentResources)
    scheduler: ComponentResources = Field(default_factory=ComponentResources)
    dag_processor: ComponentResources = Field(default_factory=ComponentResources)
    triggerer: ComponentResources = Field(default_factory=ComponentResources)
    worker: ComponentResources = Field(default_factory=ComponentResources)


class InstanceSpec(_Model):
    """One team's Airflow instance."""

    name: Name = Field(description="instance name: lowercase letters, digits and dashes")
    service_account: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,256}$")] | None
    ) = None
    groups: Groups = Field(default_factory=Groups)
    database: Database = Field(default_factory=Database)
    executor: Literal["local", "celery"] = "local"
    celery: Celery = Field(default_factory=Celery)
    kerberos: Kerberos | None = None
    ldap: Ldap | None = None
    dag_folders: list[DagFolder] = Field(
        default_factory=lambda: [DagFolder(path=Path("dags"))], min_length=1, max_length=MAX_ITEMS
    )
    metrics: Metrics = Field(default_factory=Metrics)
    api: Api = Field(default_factory=Api)
    resources: Resources = Field(default_factory=Resources)
    home: Path | None = Field(
        default=None,
        description="where `mlwf instance up` keeps the instance's files; default "
        "$XDG_STATE_HOME/mlwf/NAME (~/.local/state/mlwf/NAME)",
    )
    airflow_config: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="extra Airflow options {section: {key: value}}; options the spec owns are refused",
    )

    @field_validator("airflow_config")
    @classmethod
    def _check_config_names(cls, config: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for section, options in config.items():
            if not _CONFIG_NAME.match(section):
                raise ValueError(
                    f"section {section!r}: letters, digits and single underscores only"
                )
            if len(options) > MAX_ITEMS:
                raise ValueError(f"[{section}] has more than {MAX_ITEMS} options")
            for key in options:
                if not _CONFIG_NAME.match(key):
                    raise ValueError(
                        f"[{section}] {key!r}: letters, digits and single underscores only"
                    )
        return config

    @model_validator(mode="after")
    def _check_combinations(self) -> InstanceSpec:
        errors: list[str] = []
        if self.executor == "celery" and self.database.kind == "sqlite":
            errors.append(
                'executor "celery" needs a server database (postgresql:// or mysql://), not sqlite'
            )
        names = [folder.name for folder in self.dag_folders if folder.name is not None]
        if len(names) != len(set(names)):
            errors.append("dag_folders: two folders have the same name")
        if errors:
            raise ValueError("; ".join(errors))
        return self


def _json_path(location: tuple[int | str, ...]) -> str:
    """Return pydantic's error location as a JSON path (``celery.queues[1]``)."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-before[_from_string(), SecretRef]",):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def spec_errors(error: ValidationError) -> list[tuple[str, str]]:
    """Return every problem of a pydantic ValidationError as ``(json_path, message)``, no values."""
    found: list[tuple[str, str]] = []
    for item in error.errors(include_url=False, include_input=False):
        location = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and "[" in p and "(" in p)
        )
        message = str(item["msg"])
        message = message.removeprefix("Value error, ")
        found.append((_json_path(location), message))
    return found


def parse_spec(document: object, source: str = "spec") -> InstanceSpec:
    """Validate a parsed JSON document; raise SpecError with every problem at once."""
    try:
        return InstanceSpec.model_validate(document)
    except ValidationError as err:
        raise SpecError(source, spec_errors(err)) from None


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
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = (
            f"line {err.lineno} column {err.colno}: {err.msg}"
            if isinstance(err, json.JSONDecodeError)
            else str(err)
        )
        raise SpecError(str(path), [("", f"not valid JSON ({where})")]) from None
    spec = parse_spec(document, str(path))
    return rebase_spec(spec, path.resolve().parent)


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def rebase_spec(spec: InstanceSpec, base: Path) -> InstanceSpec:
    """Return ``spec`` with its relative paths made absolute against ``base`` (the spec's folder)."""
    folders = [f.model_copy(update={"path": _absolute(f.path, base)}) for f in spec.dag_folders]
    update: dict[str, Any] = {"dag_folders": folders}
    if spec.home is not None:
        update["home"] = _absolute(spec.home, base)
    if spec.kerberos is not None and spec.kerberos.keytab.file is not None:
        keytab = spec.kerberos.keytab.model_copy(
            update={"file": _absolute(spec.kerberos.keytab.file, base)}
        )
        update["kerberos"] = spec.kerberos.model_copy(update={"keytab": keytab})
    return spec.model_copy(update=update)


def default_home(name: str) -> Path:
    """Return the default home of instance ``name``: ``$XDG_STATE_HOME/mlwf/NAME``."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mlwf" / name


def spec_json_schema() -> dict[str, Any]:
    """Return the JSON schema of a spec file."""
    schema = InstanceSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlwf instance spec"
    return schema
