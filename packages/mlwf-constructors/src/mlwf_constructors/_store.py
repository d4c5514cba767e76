"""The instance store: SQLAlchemy tables ``mlwf_constructor_*``, with their own schema versions.

Migrations are a short ordered list of Python functions recorded in
``mlwf_constructor_schema_version`` (one row per applied version) rather than Alembic: the
tables live in Airflow's metadata database, whose Alembic environment belongs to Airflow, and
two tables do not justify a second Alembic environment, its ``env.py`` and script directory in
a wheel. Each migration runs in one transaction with the row that records it, so a crash never
leaves a half-applied version; a second process migrating at once fails on the version row's
primary key and re-reads the version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from mlwf_constructors._errors import InstanceExistsError, InstanceNotFoundError, StoreError

metadata = sa.MetaData()

instances = sa.Table(
    "mlwf_constructor_instances",
    metadata,
    sa.Column("instance_id", sa.String(100), primary_key=True),
    sa.Column("constructor", sa.String(100), nullable=False),
    sa.Column("constructor_version", sa.String(50), nullable=False),
    sa.Column("values_json", sa.Text, nullable=False),
    sa.Column("owner", sa.String(250), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

schema_version = sa.Table(
    "mlwf_constructor_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


def _v1(conn: Connection) -> None:
    instances.create(conn)


#: version → migration; append only, never edit an applied one.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1}
HEAD = max(MIGRATIONS)


@dataclass(frozen=True)
class InstanceRecord:
    """One stored instance: a named set of parameter values of one constructor."""

    instance_id: str
    constructor: str
    constructor_version: str
    values: dict[str, Any]
    owner: str
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """Return the record as a JSON-able dict (timestamps in ISO 8601)."""
        return {
            "instance_id": self.instance_id,
            "constructor": self.constructor,
            "constructor_version": self.constructor_version,
            "values": self.values,
            "owner": self.owner,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class InstanceStore:
    """CRUD over ``mlwf_constructor_instances``; every method is one transaction."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        """Connect lazily to ``url_or_engine`` (any SQLAlchemy URL or engine)."""
        if isinstance(url_or_engine, Engine):
            self.engine = url_or_engine
        else:
            try:
                url = sa.make_url(url_or_engine)
            except Exception as err:
                raise StoreError(f"invalid store URL: {err}") from None
            kwargs: dict[str, Any] = {"pool_pre_ping": True}
            if url.get_backend_name() == "sqlite":
                # Airflow's processes write the same file: wait for their locks instead of failing.
                kwargs["connect_args"] = {"timeout": 30}
            self.engine = sa.create_engine(url, **kwargs)

    def current_version(self) -> int:
        """Return the applied schema version (0 when the tables do not exist)."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(schema_version.name):
                return 0
            value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        return int(value or 0)

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in place."""
        for _attempt in range(3):
            version = self.current_version()
            if version > HEAD:
                raise StoreError(
                    f"store schema version {version} is newer than this mlwf-constructors "
                    f"supports ({HEAD}); upgrade mlwf-constructors"
                )
            if version == HEAD:
                return version
            try:
                with self.engine.begin() as conn:
                    if version == 0:
                        schema_version.create(conn, checkfirst=True)
                    for target in range(version + 1, HEAD + 1):
                        MIGRATIONS[target](conn)
                        conn.execute(
                            schema_version.insert().values(
                                version=target, applied_at=datetime.now(UTC)
                            )
                        )
            except (IntegrityError, OperationalError, ProgrammingError):
                continue  # another process migrated concurrently: re-read the version
        return self.current_version()

    def create(self, record: InstanceRecord) -> None:
        """Insert ``record``; raise InstanceExistsError when its id is taken (atomic: the primary key)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(instances.insert().values(**self._row(record)))
        except IntegrityError:
            raise InstanceExistsError(
                f"an instance with id {record.instance_id!r} already exists"
            ) from None

    def get(self, instance_id: str) -> InstanceRecord:
        """Return the instance or raise InstanceNotFoundError."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(instances).where(instances.c.instance_id == instance_id)
            ).first()
        if row is None:
            raise InstanceNotFoundError(instance_id)
        return self._record(row._mapping)

    def list(self) -> list[InstanceRecord]:
        """Return every instance, ordered by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(instances).order_by(instances.c.instance_id))
            return [self._record(r._mapping) for r in rows]

    def replace(self, record: InstanceRecord) -> None:
        """Overwrite the stored instance ``record.instance_id``; raise InstanceNotFoundError if gone."""
        row = self._row(record)
        del row["instance_id"], row["created_at"]
        with self.engine.begin() as conn:
            result = conn.execute(
                instances.update()
                .where(instances.c.instance_id == record.instance_id)
                .values(**row)
            )
        if result.rowcount == 0:
            raise InstanceNotFoundError(record.instance_id)

    def delete(self, instance_id: str) -> None:
        """Delete the instance; raise InstanceNotFoundError if it is not stored."""
        with self.engine.begin() as conn:
            result = conn.execute(instances.delete().where(instances.c.instance_id == instance_id))
        if result.rowcount == 0:
            raise InstanceNotFoundError(instance_id)

    def __iter__(self) -> Iterator[InstanceRecord]:
        """Iterate over every instance."""
        return iter(self.list())

    @staticmethod
    def _row(record: InstanceRecord) -> dict[str, Any]:
        return {
            "instance_id": record.instance_id,
            "constructor": record.constructor,
            "constructor_version": record.constructor_version,
            "values_json": json.dumps(record.values, sort_keys=True),
            "owner": record.owner,
            "enabled": record.enabled,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    @staticmethod
    def _record(row: Any) -> InstanceRecord:
        try:
            values = json.loads(row["values_json"])
        except ValueError as err:
            raise StoreError(
                f"instance {row['instance_id']!r} holds unreadable values JSON: {err}"
            ) from None
        return InstanceRecord(
            instance_id=row["instance_id"],
            constructor=row["constructor"],
            constructor_version=row["constructor_version"],
            values=values,
            owner=row["owner"],
            enabled=bool(row["enabled"]),
            created_at=_utc(row["created_at"]),
            updated_at=_utc(row["updated_at"]),
        )
