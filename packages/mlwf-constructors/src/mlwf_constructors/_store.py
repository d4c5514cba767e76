"""The instance store: SQLAlchemy tables ``mlwf_constructor_*``, with their own schema versions.

Migrations are a short ordered list of Python functions recorded in
``mlwf_constructor_schema_version`` (one row per applied version) rather than Alembic: the
tables live in Airflow's metadata database, whose Alembic environment belongs to Airflow, and
two tables do not justify a second Alembic environment, its ``env.py`` and script directory in
a wheel. Each migration runs in one transaction with the row that records it, so a crash never
leaves a half-applied version; a second process migrating at once fails on the version row's
primary key and re-reads the version. Every migration also checks for its table first: on
MariaDB/MySQL DDL commits implicitly, so a crash can leave a table without its version row.

Writers of one instance are serialized by a lock row in ``mlwf_constructor_locks`` (see
:meth:`InstanceStore.locked`): it exists whether or not the instance does, so a create, a
delete and a sync that finds an orphan file all lock the same row, and the service holds it
across the store write and the file write.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from mlwf_constructors._errors import (
    DagIdTakenError,
    InstanceExistsError,
    InstanceNotFoundError,
    StoreCommitError as StoreCommitError,
    StoreError,
)

log = logging.getLogger(__name__)

metadata = sa.MetaData()


def _id_type(length: int) -> sa.types.TypeEngine[str]:
    """An id column: case-sensitive everywhere (MariaDB/MySQL compare case-insensitively by default).

    DAG ids are case-sensitive in Airflow; with a ``*_ci`` collation row ``t`` would answer a
    request for ``T`` while authorization was asked for DAG ``T``.
    """
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


instances = sa.Table(
    "mlwf_constructor_instances",
    metadata,
    sa.Column("instance_id", _id_type(100), primary_key=True),
    sa.Column("constructor", sa.String(100), nullable=False),
    sa.Column("constructor_version", sa.String(50), nullable=False),
    sa.Column("values_json", sa.Text, nullable=False),
    sa.Column("owner", sa.String(250), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The creator's groups (JSON list; version 4): the instance's owners for an auth manager
    # that knows groups (mlwf-auth). NULL for instances stored before version 4.
    sa.Column("owner_groups", sa.Text, nullable=True),
)

schema_version = sa.Table(
    "mlwf_constructor_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


locks = sa.Table(
    "mlwf_constructor_locks",
    metadata,
    # One row per instance id being written or stored; ``generation`` counts the writes, so the
    # UPDATE that takes the lock always changes the row (MySQL reports unchanged rows as 0).
    sa.Column("instance_id", _id_type(100), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
)

dag_ids = sa.Table(
    "mlwf_constructor_dag_ids",
    metadata,
    # Every DAG id an instance's file defines (its own id included), reserved in the transaction
    # that writes the instance: the primary key makes two instances defining one DAG id impossible
    # even when they are written at the same moment.
    sa.Column("dag_id", _id_type(250), primary_key=True),
    sa.Column("instance_id", _id_type(100), nullable=False, index=True),
)

#: Returns the DAG ids a stored instance defines besides its own (for the version 3 backfill).
DefinedIds = Callable[["InstanceRecord"], Iterable[str]]


def _v1(conn: Connection, defined: DefinedIds | None = None) -> None:
    instances.create(conn, checkfirst=True)


def _v2(conn: Connection, defined: DefinedIds | None = None) -> None:
    locks.create(conn, checkfirst=True)


def _v3(conn: Connection, defined: DefinedIds | None = None) -> None:
    """Case-sensitive id columns on MariaDB/MySQL; the DAG id reservations, backfilled.

    The backfill reserves every instance's own id, then the ids each defines (``defined``, from
    its constructor) in id order; an id two instances already define (possible before version
    3) stays with the first and is logged.
    """
    if conn.dialect.name in {"mysql", "mariadb"}:
        for table in (instances, locks):
            conn.execute(
                sa.text(
                    f"ALTER TABLE {table.name} MODIFY instance_id VARCHAR(100) "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
                )
            )
    dag_ids.create(conn, checkfirst=True)
    records = [
        InstanceStore._record(r._mapping)
        for r in conn.execute(
            # The columns of version 3 only (owner_groups comes with version 4).
            sa.select(*(c for c in instances.c if c.name != "owner_groups")).order_by(
                instances.c.instance_id
            )
        )
    ]
    taken = {r[0] for r in conn.execute(sa.select(dag_ids.c.dag_id))}
    for record in records:
        if record.instance_id not in taken:
            conn.execute(
                dag_ids.insert().values(dag_id=record.instance_id, instance_id=record.instance_id)
            )
            taken.add(record.instance_id)
    for record in records:
        try:
            ids = list(defined(record)) if defined else []
        except Exception as err:  # a broken instance defines nothing Airflow could load
            log.warning(
                "mlwf-constructors: cannot list the DAGs of %r: %s", record.instance_id, err
            )
            continue
        for dag_id in ids:
            if dag_id in taken:
                if dag_id != record.instance_id:
                    log.warning(
                        "mlwf-constructors: DAG id %r of instance %r is already reserved by "
                        "another instance; not reserved for it",
                        dag_id,
                        record.instance_id,
                    )
                continue
            conn.execute(dag_ids.insert().values(dag_id=dag_id, instance_id=record.instance_id))
            taken.add(dag_id)


def _v4(conn: Connection, defined: DefinedIds | None = None) -> None:
    """The creator's groups of each instance (``owner_groups``; none for older instances)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns(instances.name)}
    if "owner_groups" not in columns:  # MariaDB/MySQL: a crash may have left the column
        conn.execute(sa.text(f"ALTER TABLE {instances.name} ADD COLUMN owner_groups TEXT NULL"))


#: version → migration; append only, never edit an applied one.
MIGRATIONS: dict[int, Callable[[Connection, DefinedIds | None], None]] = {
    1: _v1,
    2: _v2,
    3: _v3,
    4: _v4,
}
HEAD = max(MIGRATIONS)


#: ``(dag_id, owner groups)`` pairs (see :meth:`InstanceStore.owned_dags`).
OwnedDags = list[tuple[str, tuple[str, ...]]]


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
    #: The creator's groups, which own the instance (empty: owned by no group).
    owner_groups: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """Return the record as a JSON-able dict (timestamps in ISO 8601)."""
        return {
            "instance_id": self.instance_id,
            "constructor": self.constructor,
            "constructor_version": self.constructor_version,
            "values": self.values,
            "owner": self.owner,
            "owner_groups": list(self.owner_groups),
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Return a timestamp read from a store's database as an aware UTC datetime (None stays None).

    SQLite drops the time zone of ``DateTime(timezone=True)`` columns; every timestamp the mlwf
    stores write is UTC, so a naive value read back is UTC. An aware value is returned unchanged.
    """
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


#: How often taking a lock row is retried when it vanishes or the database reports a deadlock.
_LOCK_ATTEMPTS = 20


def _is_transient(err: DBAPIError) -> bool:
    """Return whether ``err`` is a deadlock or serialization failure that a retry resolves."""
    code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
    if code in {"40001", "40P01"}:  # PostgreSQL: serialization failure, deadlock detected
        return True
    args: tuple[Any, ...] = tuple(getattr(err.orig, "args", ()))
    # MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout.
    return bool(args) and args[0] in {1213, 1205}


class LockedInstance:
    """The store seen by the holder of one instance id's lock, inside one open transaction.

    Reads see the latest committed state (the lock was taken before the first read); writes
    become visible to others when :meth:`InstanceStore.locked` commits on leaving its block.
    """

    def __init__(self, conn: Connection, instance_id: str) -> None:
        self._conn = conn
        self.instance_id = instance_id

    def get(self) -> InstanceRecord | None:
        """Return the stored instance, or None when there is none."""
        row = self._conn.execute(
            sa.select(instances).where(instances.c.instance_id == self.instance_id)
        ).first()
        if row is None or row._mapping["instance_id"] != self.instance_id:
            return None  # not stored, or only under another case (a case-insensitive column)
        return InstanceStore._record(row._mapping)

    def list_all(self) -> list[InstanceRecord]:
        """Return every stored instance, read in this transaction (ordered by id)."""
        rows = self._conn.execute(sa.select(instances).order_by(instances.c.instance_id))
        return [InstanceStore._record(r._mapping) for r in rows]

    def insert(self, record: InstanceRecord) -> None:
        """Insert ``record`` (its id must be the locked id); raise InstanceExistsError if stored."""
        self._check(record)
        if self.get() is not None:
            raise InstanceExistsError(f"an instance with id {record.instance_id!r} already exists")
        self._conn.execute(instances.insert().values(**InstanceStore._row(record)))

    def replace(self, record: InstanceRecord) -> None:
        """Overwrite the stored instance with ``record``; raise InstanceNotFoundError if gone."""
        self._check(record)
        row = InstanceStore._row(record)
        del row["instance_id"], row["created_at"]
        result = self._conn.execute(
            instances.update().where(instances.c.instance_id == self.instance_id).values(**row)
        )
        if result.rowcount == 0:
            raise InstanceNotFoundError(self.instance_id)

    def delete(self) -> None:
        """Delete the stored instance; raise InstanceNotFoundError if it is not stored."""
        result = self._conn.execute(
            instances.delete().where(instances.c.instance_id == self.instance_id)
        )
        if result.rowcount == 0:
            raise InstanceNotFoundError(self.instance_id)

    def reserve(self, dag_ids_: Iterable[str]) -> None:
        """Reserve ``dag_ids_`` (and only them) for this instance; raise DagIdTakenError if one is another's.

        Reservations are rows with a unique DAG id written in the locked transaction, so of two
        concurrent writers reserving one id the second waits for the first's commit and fails.
        """
        wanted = sorted(set(dag_ids_))
        if wanted:
            owner = self._conn.execute(
                sa.select(dag_ids.c.dag_id, dag_ids.c.instance_id).where(
                    dag_ids.c.dag_id.in_(wanted), dag_ids.c.instance_id != self.instance_id
                )
            ).first()
            if owner is not None:
                raise self._taken(owner.dag_id, owner.instance_id)
        self._conn.execute(dag_ids.delete().where(dag_ids.c.instance_id == self.instance_id))
        for dag_id in wanted:
            try:
                self._conn.execute(
                    dag_ids.insert().values(dag_id=dag_id, instance_id=self.instance_id)
                )
            except IntegrityError:
                # A concurrent writer reserved it after our read and has committed since (the
                # insert waited for it); InstanceStore.locked rolls the whole transaction back.
                raise self._taken(dag_id, None) from None

    def _taken(self, dag_id: str, owner: str | None) -> DagIdTakenError:
        if owner == dag_id:
            return DagIdTakenError(
                dag_id,
                f"DAG id {dag_id!r}, which instance {self.instance_id!r} would define, "
                "is the id of another instance",
            )
        return DagIdTakenError(
            dag_id,
            f"DAG id {dag_id!r} is already defined by "
            + (f"instance {owner!r}" if owner else "another instance"),
        )

    def _check(self, record: InstanceRecord) -> None:
        if record.instance_id != self.instance_id:
            raise StoreError(
                f"lock on instance {self.instance_id!r} cannot write instance "
                f"{record.instance_id!r}"
            )


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
        # READ COMMITTED on the servers: each statement after the lock sees the latest commit,
        # and MariaDB/MySQL take no gap locks (which deadlock concurrent inserts of nearby ids).
        self._isolation = (
            "READ COMMITTED"
            if self.engine.dialect.name in {"postgresql", "mysql", "mariadb"}
            else None
        )

    def current_version(self) -> int:
        """Return the applied schema version (0 when the tables do not exist)."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(schema_version.name):
                return 0
            value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        return int(value or 0)

    def migrate(self, defined: DefinedIds | None = None) -> int:
        """Apply pending migrations; return the schema version now in place.

        ``defined`` lists the DAG ids an instance defines besides its own (the service passes
        its constructors' ``related_dags``); without it version 3 reserves only instance ids.
        """
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
                        MIGRATIONS[target](conn, defined)
                        conn.execute(
                            schema_version.insert().values(
                                version=target, applied_at=datetime.now(UTC)
                            )
                        )
            except (IntegrityError, OperationalError, ProgrammingError):
                continue  # another process migrated concurrently: re-read the version
        return self.current_version()

    def create(self, record: InstanceRecord) -> None:
        """Insert ``record``; raise InstanceExistsError when its id is taken."""
        try:
            with self.locked(record.instance_id) as locked:
                if locked.get() is not None:
                    raise InstanceExistsError(
                        f"an instance with id {record.instance_id!r} already exists"
                    )
                locked.reserve([record.instance_id])  # no other instance may define its id
                locked.insert(record)
        except IntegrityError:
            # A row written by an older release without the lock: the primary key decides.
            raise InstanceExistsError(
                f"an instance with id {record.instance_id!r} already exists"
            ) from None

    def get(self, instance_id: str) -> InstanceRecord:
        """Return the instance or raise InstanceNotFoundError."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(instances).where(instances.c.instance_id == instance_id)
            ).first()
        # Exact match only, whatever the column's collation (an older MySQL table may still
        # compare case-insensitively): row ``t`` never answers a request for ``T``.
        if row is None or row._mapping["instance_id"] != instance_id:
            raise InstanceNotFoundError(instance_id)
        return self._record(row._mapping)

    def list(self) -> list[InstanceRecord]:
        """Return every instance, ordered by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(instances).order_by(instances.c.instance_id))
            return [self._record(r._mapping) for r in rows]

    def replace(self, record: InstanceRecord) -> None:
        """Overwrite the stored instance ``record.instance_id``; raise InstanceNotFoundError if gone."""
        with self.locked(record.instance_id) as locked:
            locked.replace(record)

    def delete(self, instance_id: str) -> None:
        """Delete the instance; raise InstanceNotFoundError if it is not stored."""
        with self.locked(instance_id) as locked:
            locked.delete()

    @contextmanager
    def locked(self, instance_id: str) -> Iterator[LockedInstance]:
        """Hold the lock of ``instance_id`` for the block: one transaction, committed on success.

        Every writer of an instance (here and in :class:`~mlwf_constructors.Constructors`)
        takes this lock first, so writers of one id run one after the other across threads,
        processes and hosts, while other ids proceed. The lock is the row of ``instance_id`` in
        ``mlwf_constructor_locks``, taken by an UPDATE as the transaction's first statement (or
        inserted by it when missing): a row lock until commit on PostgreSQL and MariaDB/MySQL,
        the database's write lock on SQLite (a deferred transaction that starts with a write
        reserves the file at once).
        An exception in the block rolls everything back; a failed commit raises
        :class:`StoreCommitError`. The lock row is deleted with the instance (and when the
        instance never existed), so the table holds about one row per stored instance.
        """
        with self.engine.connect() as conn:
            if self._isolation is not None:
                conn.execution_options(isolation_level=self._isolation)
            self._acquire(conn, instance_id)
            try:
                locked = LockedInstance(conn, instance_id)
                yield locked
                if locked.get() is None:
                    conn.execute(locks.delete().where(locks.c.instance_id == instance_id))
                    conn.execute(dag_ids.delete().where(dag_ids.c.instance_id == instance_id))
            except BaseException:
                conn.rollback()
                raise
            try:
                conn.commit()
            except DBAPIError as err:
                raise StoreCommitError(
                    f"could not commit the change of instance {instance_id!r}: {err.orig}"
                ) from err

    def _acquire(self, conn: Connection, instance_id: str) -> None:
        """Begin a transaction on ``conn`` that holds the lock row of ``instance_id``."""
        take = (
            locks.update()
            .where(locks.c.instance_id == instance_id)
            .values(generation=locks.c.generation + 1)
        )
        for attempt in range(_LOCK_ATTEMPTS):
            try:
                if conn.execute(take).rowcount == 1:
                    return
                # No lock row (first write of this id, or its holder deleted it): insert it in
                # this transaction. The uncommitted key is the lock: a concurrent inserter waits
                # for our commit, then fails on the primary key and retries the UPDATE.
                conn.execute(locks.insert().values(instance_id=instance_id, generation=0))
                return
            except IntegrityError:
                conn.rollback()
            except DBAPIError as err:
                conn.rollback()
                if not _is_transient(err):
                    raise
                log.info("mlwf-constructors: retrying the lock of %r: %s", instance_id, err.orig)
                time.sleep(min(0.01 * 2**attempt, 0.5))
        raise StoreError(
            f"could not lock instance {instance_id!r} after {_LOCK_ATTEMPTS} attempts "
            "(its lock row kept vanishing or deadlocking)"
        )

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
            "owner_groups": json.dumps(sorted(record.owner_groups)),
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
            created_at=as_utc(row["created_at"]),
            updated_at=as_utc(row["updated_at"]),
            owner_groups=_groups(row.get("owner_groups")),
        )

    def owned_dags(self) -> OwnedDags:
        """Return ``(dag_id, owner groups)`` for every DAG id an instance with owners defines."""
        query = (
            sa.select(dag_ids.c.dag_id, instances.c.owner_groups)
            .join(instances, instances.c.instance_id == dag_ids.c.instance_id)
            .where(instances.c.owner_groups.is_not(None))
            .order_by(dag_ids.c.dag_id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = []
        for dag_id, stored in rows:
            groups = _groups(stored)
            if groups:
                found.append((dag_id, groups))
        return found


def _groups(stored: str | None) -> tuple[str, ...]:
    """Return the owner groups of a stored ``owner_groups`` value (unreadable: none, logged)."""
    if not stored:
        return ()
    try:
        groups = json.loads(stored)
    except ValueError:
        groups = None
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        log.warning("mlwf-constructors: ignoring unreadable owner_groups %r", stored[:200])
        return ()
    return tuple(groups)
