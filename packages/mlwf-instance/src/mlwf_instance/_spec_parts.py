"""The sections of an instance spec: secrets, database, Celery, identity, DAG folders, API, resources.

Each section is a small frozen pydantic model whose fields carry the ``description`` that the
JSON schema and the reference page (``docs/mlwf-instance/spec.md``) are generated from. The
whole spec, and its loading from a file, is :mod:`mlwf_instance._spec`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from mlwf_instance._spec_errors import SpecError, describe_pattern, problems

#: Bound of a spec file: a team's spec is about ten lines; nothing legitimate comes near this.
MAX_SPEC_BYTES = 256 * 1024
#: Bound of the number of entries in any list or mapping of a spec.
MAX_ITEMS = 64
#: Bound of the nesting of a spec document (the deepest field, resources.*.*.cpu, is at 4).
MAX_DEPTH = 10
#: Bound of a secret read from a file (a password, a token: never megabytes).
MAX_SECRET_BYTES = 64 * 1024
#: Bound of any URL or path, and of any other free-form string.
MAX_URL = 2048
MAX_PATH = 4096
MAX_TEXT = 1024

_NAME = describe_pattern(
    r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$",
    "lowercase letters, digits and dashes, 2 to 40 characters, starting with a letter and not "
    "ending with a dash",
)
_GROUP = describe_pattern(r"^[^\x00-\x1f\x7f]+$", "no control characters")
_ENV_NAME = describe_pattern(
    r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
    "an environment variable name: letters, digits and underscores, not starting with a digit",
)
_ACCOUNT = describe_pattern(
    r"^[A-Za-z0-9_.@-]{1,256}$", "letters, digits and . _ @ - only, at most 256 characters"
)
_QUEUE = describe_pattern(
    r"^[A-Za-z0-9_.-]{1,100}$", "letters, digits and . _ - only, 1 to 100 characters"
)
_BUNDLE = describe_pattern(
    r"^[A-Za-z0-9_.-]{1,200}$", "letters, digits and . _ - only, 1 to 200 characters"
)
_PRINCIPAL = describe_pattern(
    r"^[^@\s]{1,255}@[^@\s]{1,255}$", "a Kerberos principal: primary[/instance]@REALM"
)
_LDAP_URL = describe_pattern(
    r"^ldaps?://[^/\s]{1,255}$", "ldap://HOST[:PORT] or ldaps://HOST[:PORT], without a path"
)
_REALM = describe_pattern(
    r"^[A-Za-z0-9.-]{1,255}$", "a Kerberos realm: letters, digits, . and - (e.g. EXAMPLE.COM)"
)
_HOST = describe_pattern(
    r"^[A-Za-z0-9.:-]{1,255}$", "a host name or IP address (e.g. 127.0.0.1 or 0.0.0.0)"
)
_QUANTITY = describe_pattern(
    r"^[0-9]{1,12}(\.[0-9]{1,6})?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$",
    'a Kubernetes quantity, e.g. "500m", "2", "1Gi"',
)
_CONFIG_NAME = describe_pattern(
    r"^[A-Za-z0-9]{1,100}(_[A-Za-z0-9]{1,100}){0,20}$",
    "letters, digits and single underscores (an Airflow option name)",
)

Name = Annotated[str, StringConstraints(pattern=_NAME)]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=_GROUP)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Quantity = Annotated[str, StringConstraints(pattern=_QUANTITY)]


def _bounded_path(value: Any) -> Any:
    """Refuse paths that are empty, hold a NUL byte or are longer than MAX_PATH."""
    if isinstance(value, str):
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_PATH:
            raise ValueError(f"too long: at most {MAX_PATH} characters")
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
    elif not isinstance(value, Path):
        raise ValueError("must be a path (a string)")
    return value


SpecPath = Annotated[Path, BeforeValidator(_bounded_path)]


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt "wokers" must not silently mean the default.
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How the object may be written, for "must be …" messages (None: an object).
    JSON_FORMS: ClassVar[str | None] = None


def _object_or_string(
    handler: GetJsonSchemaHandler, schema: core_schema.CoreSchema, string: dict[str, Any]
) -> JsonSchemaValue:
    """Return the JSON schema of a model that may also be written as a plain string."""
    json_schema = handler.resolve_ref_schema(handler(schema))
    as_object = dict(json_schema)
    json_schema.clear()
    json_schema.update(
        {
            "title": as_object.pop("title", None),
            "description": as_object.pop("description", None),
            "anyOf": [{"type": "string", **string}, as_object],
        }
    )
    return json_schema


class _StringShorthand(_Model):
    """A model that may also be written as a plain string: the value of its ``SHORTHAND`` field."""

    #: The field a plain string fills.
    SHORTHAND: ClassVar[str]
    #: The JSON schema description of the string form.
    SHORTHAND_DESCRIPTION: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {cls.SHORTHAND: data} if isinstance(data, str) else data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Accept the shorthand string besides the object."""
        return _object_or_string(handler, schema, {"description": cls.SHORTHAND_DESCRIPTION})


class SecretRef(_StringShorthand):
    """A secret: a literal string, ``{"env": "NAME"}`` or ``{"file": "PATH"}``.

    A plain string puts the secret in the spec file itself: prefer an environment variable or a
    file (its content, trailing newline removed; relative to the spec's folder). The value is
    read only when it is needed, and is never printed: messages say where it comes from.
    """

    JSON_FORMS: ClassVar[str | None] = 'a string, {"env": "NAME"} or {"file": "PATH"}'
    SHORTHAND = "value"

    value: str | None = Field(
        default=None,
        repr=False,
        max_length=MAX_SECRET_BYTES,
        description="the secret itself (avoid: the spec file then holds it)",
    )
    env: str | None = Field(
        default=None, pattern=_ENV_NAME, description="environment variable holding the secret"
    )
    file: SpecPath | None = Field(
        default=None, description="file holding the secret; relative to the spec's folder"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [n for n in ("value", "env", "file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {self.JSON_FORMS}")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Describe the three JSON forms (a string, ``{"env"}``, ``{"file"}``), not the model."""
        json_schema = handler.resolve_ref_schema(handler(schema))
        properties = json_schema["properties"]
        json_schema.clear()
        json_schema.update(
            {
                "title": "SecretRef",
                "description": cls.__doc__.split("\n\n", 1)[0] if cls.__doc__ else "",
                "anyOf": [
                    {"type": "string", "description": properties["value"]["description"]},
                    *(
                        {
                            "type": "object",
                            "properties": {
                                key: {
                                    k: v
                                    for k, v in properties[key]["anyOf"][0].items()
                                    if k != "title"
                                }
                                | {"description": properties[key]["description"]}
                            },
                            "required": [key],
                            "additionalProperties": False,
                        }
                        for key in ("env", "file")
                    ),
                ],
            }
        )
        return json_schema

    def describe(self) -> str:
        """Say where the secret comes from, without its value."""
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "a literal value in the spec"

    def _path(self, base: Path | None) -> Path:
        assert self.file is not None
        return self.file if base is None or self.file.is_absolute() else base / self.file

    def resolve(self, base: Path | None = None, *, where: str = "secret") -> str:
        """Return the secret's value; raise SpecError naming ``where`` and its source, never the value."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            found = os.environ.get(self.env)
            if found is None:
                raise SpecError(where, [(where, f"environment variable {self.env} is not set")])
            if not found:
                raise SpecError(where, [(where, f"environment variable {self.env} is empty")])
            return found
        path = self._path(base)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as err:
            raise SpecError(where, [(where, f"cannot read file {path}: {err.strerror}")]) from None
        if len(raw) > MAX_SECRET_BYTES:
            raise SpecError(
                where, [(where, f"file {path} is larger than {MAX_SECRET_BYTES} bytes")]
            )
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise SpecError(where, [(where, f"file {path} is not UTF-8 text")]) from None
        if not text:
            raise SpecError(where, [(where, f"file {path} is empty")])
        return text

    def __repr__(self) -> str:
        return f"SecretRef({self.describe()})"

    __str__ = __repr__


class Groups(_Model):
    """The directory groups of the instance's three roles, used by the mlwf-auth auth manager."""

    admin: list[GroupName] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="groups whose members administer the instance (connections, pools, all DAGs)",
    )
    users: list[GroupName] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="groups whose members run and edit the team's DAGs",
    )
    viewers: list[GroupName] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="groups whose members may only look",
    )


DatabaseKind = Literal["sqlite", "postgresql", "mysql"]
_SCHEMES: dict[str, DatabaseKind] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
#: Query parameters a database URL may carry, per kind: TLS and connection settings that both
#: of Airflow's drivers understand (``_database`` renames them for asyncpg). Certificate files
#: of PostgreSQL come from libpq's environment (``PGSSLROOTCERT``…), which both drivers read.
DATABASE_QUERY_PARAMETERS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"sslmode", "connect_timeout", "application_name"}),
    # No TLS parameters: the async driver (aiomysql) takes an SSLContext only, and a URL that
    # encrypts one driver's connections but not the other's would leak the password.
    "mysql": frozenset({"connect_timeout"}),
}
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_PARAMETER_NAME = re.compile(r"^[a-z_]{1,40}$")


def _check_query(kind: str, query: str) -> None:
    """Refuse a query parameter not in :data:`DATABASE_QUERY_PARAMETERS`, naming it but no value."""
    allowed = DATABASE_QUERY_PARAMETERS[kind]
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ValueError("the URL's ?query is not name=value pairs joined by &") from None
    seen: set[str] = set()
    for key, value in pairs:
        if key not in allowed:
            name = f"{key!r} " if _PARAMETER_NAME.match(key) else ""
            raise ValueError(
                f"query parameter {name}is not supported; a {kind} URL may carry "
                + ", ".join(sorted(allowed))
            )
        if key in seen:
            raise ValueError(f"query parameter {key!r} is given twice")
        seen.add(key)
        if key == "sslmode" and value not in _SSLMODES:
            raise ValueError(f"sslmode must be one of {', '.join(_SSLMODES)}")
        if key == "connect_timeout" and not (value.isdigit() and 0 < int(value) <= 3600):
            raise ValueError("connect_timeout must be a whole number of seconds, 1 to 3600")


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


class Database(_StringShorthand):
    """The metadata database: ``"sqlite"`` (a file in the instance home) or a server URL.

    A plain string is the URL. PostgreSQL and MariaDB/MySQL hold the metadata, and with the
    Celery executor also the task results and (by default) the broker's queue.
    """

    JSON_FORMS: ClassVar[str | None] = '"sqlite", a URL string or {"url": …}'
    SHORTHAND = "url"
    SHORTHAND_DESCRIPTION = "the URL alone"

    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)] = Field(
        default="sqlite",
        description='"sqlite", postgresql://USER@HOST[:PORT]/DATABASE or mysql://USER@HOST[:PORT]/'
        "DATABASE (MariaDB too), without a driver and preferably without the password; a "
        "PostgreSQL URL may end in ?sslmode=…&connect_timeout=…&application_name=…, a MySQL URL "
        "in ?connect_timeout=…",
    )
    password: SecretRef | None = Field(
        default=None, description="the database user's password (keeps it out of the URL)"
    )
    create: bool = Field(
        default=False,
        description="create the database on `mlwf instance up` if it does not exist (needs the "
        "right to create databases on the server)",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if url == "sqlite":
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError on a malformed port)
        except ValueError:
            raise ValueError("not a valid URL") from None
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in _SCHEMES:
            shown = f"{parts.scheme}://" if parts.scheme else "(none)"
            raise ValueError(
                f'scheme {shown[:20]} is not supported: use "sqlite", postgresql://… or '
                "mysql://… (MariaDB too)"
            )
        if "+" in parts.scheme:
            raise ValueError(
                f"give the URL without a driver ({scheme}://…, not {parts.scheme[:30]}://…): "
                "mlwf picks the drivers Airflow needs"
            )
        if not parts.hostname:
            raise ValueError("the URL names no host")
        if not parts.path.strip("/"):
            raise ValueError("the URL names no database (…/DATABASE)")
        if parts.fragment:
            raise ValueError("the URL must not have a #fragment")
        if parts.query:
            _check_query(_SCHEMES[scheme], parts.query)
        return url

    @model_validator(mode="after")
    def _check_password(self) -> Database:
        if self.password is not None:
            if self.url == "sqlite":
                raise problems([(("password",), "sqlite has no password: remove it")])
            if urlsplit(self.url).password is not None:
                raise problems(
                    [(("password",), "the URL carries a password too: give it in one place")]
                )
        return self

    @property
    def kind(self) -> DatabaseKind:
        """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB is ``mysql``)."""
        if self.url == "sqlite":
            return "sqlite"
        return _SCHEMES[urlsplit(self.url).scheme]

    def __repr__(self) -> str:
        return (
            f"Database(url={_hide_password(self.url)!r}, password={self.password!r}, "
            f"create={self.create})"
        )

    __str__ = __repr__


class Celery(_Model):
    """Celery workers and their broker (used when ``executor`` is ``celery``)."""

    broker: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)] = Field(
        default="database",
        description='"database": kombu\'s SQLAlchemy transport on the metadata database (no '
        "extra service to run); or a redis://, rediss://, amqp:// or amqps:// URL",
    )
    broker_password: SecretRef | None = Field(
        default=None, description="password of a Redis or RabbitMQ broker (keeps it out of the URL)"
    )
    workers: int = Field(default=2, ge=1, le=MAX_ITEMS, description="number of Celery workers")
    concurrency: int = Field(
        default=4, ge=1, le=256, description="tasks each worker runs at the same time"
    )
    queues: list[Annotated[str, StringConstraints(pattern=_QUEUE)]] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        max_length=MAX_ITEMS,
        description="queues the workers consume (a task picks one with its `queue` argument)",
    )

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, broker: str) -> str:
        if broker == "database":
            return broker
        try:
            parts = urlsplit(broker)
            parts.port  # noqa: B018  (raises ValueError on a malformed port)
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme not in ("redis", "rediss", "amqp", "amqps"):
            raise ValueError(
                f'{parts.scheme[:20]}:// is not a broker: use "database", redis://… or amqp://…'
                if "://" in broker
                else 'use "database", redis://HOST:PORT/DB or amqp://USER@HOST:PORT/VHOST'
            )
        if not parts.hostname:
            raise ValueError("the URL names no host")
        return broker

    @model_validator(mode="after")
    def _check_password(self) -> Celery:
        if self.broker_password is not None:
            if self.broker == "database":
                raise problems(
                    [(("broker_password",), 'the "database" broker uses database.password')]
                )
            if urlsplit(self.broker).password is not None:
                raise problems(
                    [(("broker_password",), "the URL carries a password too: give it in one place")]
                )
        return self

    @property
    def broker_kind(self) -> Literal["database", "redis", "amqp"]:
        """``database``, ``redis`` or ``amqp`` (``rediss``/``amqps`` included)."""
        if self.broker == "database":
            return "database"
        return "redis" if urlsplit(self.broker).scheme.startswith("redis") else "amqp"

    def __repr__(self) -> str:
        return (
            f"Celery(broker={_hide_password(self.broker)!r}, broker_password="
            f"{self.broker_password!r}, workers={self.workers}, concurrency={self.concurrency}, "
            f"queues={self.queues!r})"
        )

    __str__ = __repr__


class Kerberos(_Model):
    """The instance's Kerberos identity: its service principal and keytab."""

    principal: Annotated[str, StringConstraints(pattern=_PRINCIPAL)] = Field(
        description="service principal, e.g. airflow/recsys.example.com@EXAMPLE.COM"
    )
    keytab: SecretRef = Field(
        description='the keytab: {"file": PATH} (relative to the spec\'s folder), or its path '
        'as a string or from {"env": NAME}'
    )

    http_keytab: SecretRef | None = Field(
        default=None,
        description="the keytab of HTTP/<the host name users open> (same forms as keytab): "
        "Kerberos single sign-on (SPNEGO) for the UI, the API and scripts; needs ldap",
    )
    login_realms: list[Annotated[str, StringConstraints(pattern=_REALM)]] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="realms whose users may log in by Kerberos; default: the principal's realm",
    )

    def keytab_path(self, base: Path | None = None) -> Path:
        """Return the keytab's path (a file reference itself, or the path a string/variable holds)."""
        return _keytab_path(self.keytab, base, "kerberos.keytab")

    def http_keytab_path(self, base: Path | None = None) -> Path | None:
        """Return the HTTP keytab's path, or None without single sign-on."""
        if self.http_keytab is None:
            return None
        return _keytab_path(self.http_keytab, base, "kerberos.http_keytab")

    @property
    def realms(self) -> list[str]:
        """The realms whose users may log in: ``login_realms``, else the principal's realm."""
        return self.login_realms or [self.principal.rsplit("@", 1)[1]]


def _keytab_path(ref: SecretRef, base: Path | None, where: str) -> Path:
    if ref.file is not None:
        return ref._path(base)
    return Path(ref.resolve(base, where=where))


class Ldap(_Model):
    """The LDAP directory where users and their groups are looked up."""

    url: Annotated[str, StringConstraints(pattern=_LDAP_URL)] = Field(
        description="ldap://HOST[:PORT] or ldaps://HOST[:PORT]"
    )
    user_base: Text = Field(description="base DN of the users, e.g. ou=people,dc=example,dc=com")
    group_base: Text = Field(description="base DN of the groups, e.g. ou=groups,dc=example,dc=com")
    bind_dn: Text | None = Field(default=None, description="DN to bind as; none: bind anonymously")
    bind_password: SecretRef | None = Field(default=None, description="password of bind_dn")
    group_style: Literal["member_of", "member", "member_uid"] = Field(
        default="member_of",
        description='how groups are found: "member_of" (the user\'s memberOf, under group_base), '
        '"member" (groupOfNames naming the user\'s DN) or "member_uid" (posixGroup naming the user)',
    )
    user_filter: Text | None = Field(
        default=None,
        description="LDAP filter of a user, {user} the name; default (uid={user}); exclude "
        "disabled accounts here",
    )
    start_tls: bool = Field(default=False, description="StartTLS on an ldap:// URL")
    ca_certs_file: SpecPath | None = Field(
        default=None,
        description="CA certificates that sign the server's certificate; on a cluster the "
        "API server mounts them from the Secret <name>-ldap-ca-certs; default: the system's",
    )

    @model_validator(mode="after")
    def _check_bind(self) -> Ldap:
        if self.bind_password is not None and self.bind_dn is None:
            raise problems([(("bind_password",), "given without bind_dn")])
        return self


class DagFolder(_StringShorthand):
    """One DAG folder, run as its own DAG bundle (a plain string is its path)."""

    JSON_FORMS: ClassVar[str | None] = 'a path string or {"path": …, "name": …}'
    SHORTHAND = "path"
    SHORTHAND_DESCRIPTION = "the path alone"

    path: SpecPath = Field(description="the folder; relative to the spec's folder")
    name: Annotated[str, StringConstraints(pattern=_BUNDLE)] | None = Field(
        default=None, description="DAG bundle name; default: derived from the folder's name"
    )


class Metrics(_Model):
    """The instance's metrics, collected by mlwf-stats-bridge into a Prometheus registry."""

    enabled: bool = Field(default=True, description="collect Airflow's metrics")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="port of a separate /metrics endpoint for Prometheus; none: served by the API "
        "server only (at /mlwf-stats-bridge/metrics, authenticated)",
    )


class Api(_Model):
    """Where the API server (and UI) listens."""

    host: Annotated[str, StringConstraints(pattern=_HOST)] = Field(
        default="127.0.0.1", description="address to listen on; 0.0.0.0 for every interface"
    )
    port: int = Field(default=8080, ge=1, le=65535, description="port to listen on")
    base_url: Annotated[str, StringConstraints(max_length=MAX_URL)] | None = Field(
        default=None,
        description="the public URL when the server sits behind a proxy; default http://HOST:PORT",
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, url: str | None) -> str | None:
        if url is not None and (urlsplit(url).scheme not in ("http", "https") or "://" not in url):
            raise ValueError("must be an http:// or https:// URL")
        return url


class ComponentResources(_Model):
    """Kubernetes requests and limits of one component (e.g. ``{"cpu": "500m", "memory": "1Gi"}``)."""

    requests: dict[Literal["cpu", "memory"], Quantity] = Field(
        default_factory=dict, description='what the component is guaranteed: {"cpu", "memory"}'
    )
    limits: dict[Literal["cpu", "memory"], Quantity] = Field(
        default_factory=dict, description='what the component may use at most: {"cpu", "memory"}'
    )


class Resources(_Model):
    """Kubernetes resources per component (targets helm and kubernetes only)."""

    api_server: ComponentResources = Field(
        default_factory=ComponentResources, description="the API server (and UI)"
    )
    scheduler: ComponentResources = Field(
        default_factory=ComponentResources, description="the scheduler"
    )
    dag_processor: ComponentResources = Field(
        default_factory=ComponentResources, description="the DAG processor"
    )
    triggerer: ComponentResources = Field(
        default_factory=ComponentResources, description="the triggerer"
    )
    worker: ComponentResources = Field(
        default_factory=ComponentResources, description="each Celery worker"
    )
