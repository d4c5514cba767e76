"""Operations on instances that keep the store, the DAG folder and Airflow consistent.

The store is the source of truth. Every operation validates what it can first, then takes the
instance's lock (:meth:`InstanceStore.locked`, a database row lock held by one transaction),
writes the store and the generated file inside that transaction and commits; if the file cannot
be written the transaction rolls back, so nothing is half-written, and because every writer of an
id (create, update, enable/disable, delete, sync) holds the same lock across both writes, the file
ends matching the store whatever the interleaving, across threads, processes and hosts.
Afterwards Airflow's DAG processor is asked to parse the file at once (a
``dag_priority_parsing_request`` row, what ``PUT /api/v2/parseDagFile`` inserts), so a new or
changed instance appears within seconds without lowering ``refresh_interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwf_constructors import _materialize as files
from mlwf_constructors._constructor import RelatedDag
from mlwf_constructors._errors import (
    ConstructorsError,
    DagIdTakenError,
    InstanceExistsError,
    InstanceNotFoundError,
    StoreError,
)
from mlwf_constructors._ids import check_instance_id
from mlwf_constructors._registry import (
    RegisteredConstructor,
    configured_bundle_modules,
    discover,
    lookup,
)
from mlwf_constructors._related import check_defined_free, defined_ids, prepare, related_of
from mlwf_constructors._store import (
    InstanceRecord,
    InstanceStore,
    LockedInstance,
    StoreCommitError,
)

log = logging.getLogger(__name__)

# What a locked write did to the generated file (announced to Airflow after the commit).
_WRITTEN, _REMOVED, _UNCHANGED = "written", "removed", "unchanged"

#: Called under the instance's lock, after validation and before anything is written, with the
#: stored instance (None on create), the instance about to be written (None on delete) and the
#: DAGs the latter defines or uses (the former's on delete). It raises to refuse the write.
Authorize = Callable[[InstanceRecord | None, InstanceRecord | None, tuple[RelatedDag, ...]], None]


@dataclass(frozen=True)
class Settings:
    """Where instances live: the store URL, the DAG folder and the bundle that holds it.

    ``dags_folder`` is where bundle modules are imported from (``[core] dags_folder``);
    ``instances_folder`` is the root of the DAG bundle ``bundle_name`` that receives the
    generated files (in its ``mlwf_constructed/`` folder); it defaults to ``dags_folder``.
    """

    store_url: str
    dags_folder: Path
    bundle_name: str = "dags-folder"
    bundle_modules: tuple[str, ...] = ()
    max_body_bytes: int = 65536
    instances_folder: Path | None = None

    @property
    def instances_root(self) -> Path:
        """Return the bundle folder that holds ``mlwf_constructed/`` (``instances_folder`` or ``dags_folder``)."""
        return self.dags_folder if self.instances_folder is None else self.instances_folder

    @classmethod
    def from_airflow(cls) -> Settings:
        """Read ``[mlwf_constructors]``, ``[database] sql_alchemy_conn`` and ``[core] dags_folder``.

        ``[mlwf_constructors] instances_folder`` (optional) is the root folder of the bundle
        ``[mlwf_constructors] bundle_name`` when that is not the ``[core] dags_folder`` bundle.
        """
        from airflow.configuration import conf

        store_url = conf.get("mlwf_constructors", "store_url", fallback="") or conf.get(
            "database", "sql_alchemy_conn"
        )
        try:
            max_body = int(conf.get("mlwf_constructors", "max_body_bytes", fallback="65536"))
        except ValueError as err:
            raise StoreError(
                f"[mlwf_constructors] max_body_bytes must be an integer: {err}"
            ) from None
        return cls(
            store_url=store_url,
            dags_folder=Path(conf.get("core", "dags_folder")).expanduser().resolve(),
            bundle_name=conf.get("mlwf_constructors", "bundle_name", fallback="dags-folder"),
            bundle_modules=configured_bundle_modules(),
            max_body_bytes=max_body,
            instances_folder=(
                Path(instances).expanduser().resolve()
                if (instances := conf.get("mlwf_constructors", "instances_folder", fallback=""))
                else None
            ),
        )


@dataclass
class SyncReport:
    """What :meth:`Constructors.sync` changed in the DAG folder."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Constructors:
    """The constructors of an Airflow installation and the instances in its store."""

    def __init__(self, settings: Settings, *, airflow_db: bool = True) -> None:
        """Discover constructors and connect to (and migrate) the store.

        ``airflow_db`` enables the Airflow metadata-DB steps (DAG id collision check, reparse
        requests, hiding a deleted instance's DAG); off for stores used without Airflow.
        """
        self.settings = settings
        self.registry = discover(settings.bundle_modules, settings.dags_folder)
        self.store = InstanceStore(settings.store_url)
        self.store.migrate(self._defined_besides_own)
        self.airflow_db = airflow_db

    @classmethod
    def from_airflow(cls) -> Constructors:
        """Return the service configured by the current Airflow configuration."""
        return cls(Settings.from_airflow())

    # -- reading --------------------------------------------------------------------------

    def constructor(self, reference: str) -> RegisteredConstructor:
        """Return a registered constructor or raise ConstructorNotFoundError."""
        return lookup(self.registry, reference)

    def path(self, instance_id: str) -> Path:
        """Return the generated file of an instance."""
        return files.file_path(self.settings.instances_root, instance_id)

    # -- writing --------------------------------------------------------------------------

    def create(
        self,
        instance_id: str,
        constructor: str,
        values: Mapping[str, Any],
        *,
        owner: str,
        owner_groups: Iterable[str] = (),
        enabled: bool = True,
        authorize: Authorize | None = None,
    ) -> InstanceRecord:
        """Validate and store a new instance, then write its DAG file.

        Raises InvalidInstanceIdError, ConstructorNotFoundError, ParameterValidationError,
        ConstructorRefusedError, InstanceExistsError (id, DAG id or file taken; DagIdTakenError
        when a DAG id it would define is) and leaves nothing behind on any error. ``authorize``
        runs under the instance's lock before the free checks and the write.
        """
        check_instance_id(instance_id)
        registered = self.constructor(constructor)
        prepared = prepare(self, instance_id, registered.reference, values)  # builds the DAG once
        complete = prepared.values
        now = datetime.now(UTC)
        record = InstanceRecord(
            instance_id=instance_id,
            constructor=registered.reference,
            constructor_version=registered.version,
            values=complete,
            owner=owner,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            owner_groups=tuple(sorted(set(owner_groups))),
        )

        def insert(locked: LockedInstance) -> InstanceRecord:
            if locked.get() is not None:
                raise InstanceExistsError(f"an instance with id {instance_id!r} already exists")
            if authorize is not None:
                authorize(None, record, prepared.related)
            self._check_free(instance_id)
            check_defined_free(self, instance_id, prepared.related, locked.list_all())
            # In this transaction: a concurrent writer of another instance defining one of these
            # ids waits for our commit and then fails on the reservation (and we on theirs).
            locked.reserve([instance_id, *defined_ids(prepared.related)])
            locked.insert(record)
            return record

        self._locked_write(instance_id, insert)
        return record

    def update(
        self,
        instance_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
        authorize: Authorize | None = None,
    ) -> InstanceRecord:
        """Change an instance's values (merged over the stored ones) and/or its enabled flag.

        The merge, the validation, ``authorize`` and the checks that the DAG ids it defines are
        free run under the instance's lock, over the values stored at that moment: of two
        concurrent PATCHes the later one sees (and keeps) the earlier one's, and what is
        authorized is exactly what is written. A request that disables the instance skips the
        free checks (it removes the file), so disabling always works.
        """
        check_instance_id(instance_id)

        def change(locked: LockedInstance) -> InstanceRecord:
            old = locked.get()
            if old is None:
                raise InstanceNotFoundError(instance_id)
            new = old
            if values is not None:
                registered = self.constructor(old.constructor)
                prepared = prepare(self, instance_id, old.constructor, {**old.values, **values})
                related = prepared.related
                new = replace(new, values=prepared.values, constructor_version=registered.version)
            else:
                related = related_of(self, old)
            if enabled is not None:
                new = replace(new, enabled=enabled)
            new = replace(new, updated_at=datetime.now(UTC))
            if authorize is not None:
                authorize(old, new, related)
            if enabled is not False:
                check_defined_free(self, instance_id, related, locked.list_all())
            if enabled is not False or values is not None:
                locked.reserve([instance_id, *defined_ids(related)])
            locked.replace(new)
            return new

        record, _ = self._locked_write(instance_id, change)
        assert record is not None  # change() returns a record or raises
        return record

    def delete(self, instance_id: str, *, authorize: Authorize | None = None) -> None:
        """Delete an instance and its DAG file; its DAG disappears from Airflow.

        ``authorize`` runs under the instance's lock with the DAGs of the instance as stored then.
        """
        check_instance_id(instance_id)

        def delete(locked: LockedInstance) -> None:
            old = locked.get()
            if old is None:
                raise InstanceNotFoundError(instance_id)
            if authorize is not None:
                authorize(old, None, related_of(self, old))
            locked.delete()  # its DAG id reservations go with it

        self._locked_write(instance_id, delete)

    def sync(self) -> SyncReport:
        """Make the generated files match the store: re-create missing or altered ones, remove orphans.

        Safe while other writers run: a file that already matches the listed record is left
        alone without locking (a concurrent writer keeps it right itself); every file that must
        change, every orphan and every temporary file is handled under its instance's lock after
        re-reading the store, so an instance created after the listing keeps its file and the
        temporary file of a write in progress (whose writer holds the lock) is never touched.
        """
        report = SyncReport()
        root = self.settings.instances_root
        folder = files.generated_dir(root)
        listed = {record.instance_id: record for record in self.store.list()}
        on_disk: set[str] = set()
        with_temp: set[str] = set()
        strays: list[Path] = []
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            instance_id = files.instance_id_of(path)
            if path.name.endswith(".part"):
                if instance_id is not None:
                    with_temp.add(instance_id)
            elif instance_id is not None:
                on_disk.add(instance_id)
            elif path.suffix == ".py" and files.is_generated(path):
                strays.append(path)  # generated, yet named after no valid id: no writer owns it
        written: list[Path] = []
        for instance_id in sorted(listed.keys() | on_disk | with_temp):
            path = self.path(instance_id)
            try:
                if instance_id not in with_temp and self._file_matches(
                    path, listed.get(instance_id)
                ):
                    if instance_id in listed and listed[instance_id].enabled:
                        report.unchanged.append(instance_id)
                    continue
                record, outcome = self._locked_write(
                    instance_id, self._reread_dropping_temp_files, announce=False
                )
            except (ConstructorsError, OSError) as err:
                report.failed[instance_id] = str(err)
                continue
            if outcome == _WRITTEN:
                report.written.append(instance_id)
                written.append(path)
            elif outcome == _REMOVED:
                report.removed.append(path.name)
                self._announce(instance_id, _REMOVED)
            elif record is not None and record.enabled:
                report.unchanged.append(instance_id)
        for path in strays:
            path.unlink(missing_ok=True)
            report.removed.append(path.name)
        for stale in files.legacy_temp_files(root):
            stale.unlink(missing_ok=True)  # an older release's leftover, idle for an hour
        self._request_parse(written)
        return report

    # -- internals ------------------------------------------------------------------------

    def _locked_write(
        self,
        instance_id: str,
        change: Callable[[LockedInstance], InstanceRecord | None],
        *,
        announce: bool = True,
        repair: bool = True,
    ) -> tuple[InstanceRecord | None, str]:
        """Under the instance's lock, apply ``change`` to the store and make the file match.

        ``change`` returns the instance as it must end (None: not stored). The store write and
        the file write happen in one transaction that holds the lock; an error rolls the store
        back (the file is written last, atomically, so it is unchanged then). If the commit
        itself fails after the file was written, the file is made to match the store again
        under a fresh lock before the error is raised.
        """
        try:
            with self.store.locked(instance_id) as locked:
                record = change(locked)
                outcome = self._apply(instance_id, record)
        except StoreCommitError:
            if repair:
                try:
                    self._locked_write(instance_id, LockedInstance.get, repair=False)
                except Exception as err:
                    log.error(
                        "mlwf-constructors: file of instance %r may not match the store "
                        "(run `mlwf constructors sync`): %s",
                        instance_id,
                        err,
                    )
            raise
        if announce:
            self._announce(instance_id, outcome)
        return record, outcome

    def _apply(self, instance_id: str, record: InstanceRecord | None) -> str:
        """Make the file of ``instance_id`` match ``record`` (call with the instance's lock held)."""
        path = self.path(instance_id)
        if record is not None and record.enabled:
            if path.exists() and not files.is_generated(path):
                raise InstanceExistsError(
                    f"file {path} exists and was not generated by mlwf-constructors"
                )
            text = files.render(record, self.constructor(record.constructor))
            return _WRITTEN if files.write_atomic(path, text) else _UNCHANGED
        return _REMOVED if files.remove(path) else _UNCHANGED

    def _announce(self, instance_id: str, outcome: str) -> None:
        """Tell Airflow about a committed file change (best effort, outside the lock)."""
        path = self.path(instance_id)
        if outcome == _WRITTEN:
            self._request_parse([path])
        elif outcome == _REMOVED and not path.exists():  # not re-created meanwhile
            self._hide_dag(instance_id)

    def _file_matches(self, path: Path, record: InstanceRecord | None) -> bool:
        """Return whether the file already is what ``record`` asks (read without the lock)."""
        if record is None or not record.enabled:
            return not (path.exists() and files.is_generated(path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return text == files.render(record, self.constructor(record.constructor))

    def _reread_dropping_temp_files(self, locked: LockedInstance) -> InstanceRecord | None:
        """Return the stored instance; drop its temporary files (no write of it is in progress)."""
        for temp in files.temp_files(self.settings.instances_root, locked.instance_id):
            temp.unlink(missing_ok=True)  # left by a writer that crashed before its rename
        return locked.get()

    def _defined_besides_own(self, record: InstanceRecord) -> list[str]:
        """Return the DAG ids ``record`` defines besides its own (store migration backfill)."""
        return [d for d in defined_ids(related_of(self, record)) if d != record.instance_id]

    def _check_free(self, instance_id: str) -> None:
        """Raise InstanceExistsError if a file or a DAG from elsewhere already uses the id.

        On a case-insensitive file system (macOS) the file of ``T`` is the file of ``t``: a file
        whose name differs only in case from the id's own file name is refused too.
        """
        path = self.path(instance_id)
        if path.exists() and not files.is_generated(path):
            raise InstanceExistsError(
                f"file {path} exists and was not generated by mlwf-constructors"
            )
        if path.exists() and path.name not in {p.name for p in path.parent.iterdir()}:
            raise InstanceExistsError(
                f"the file of instance {instance_id!r} would be {path.name}, which this "
                "case-insensitive file system already holds under another case (an instance "
                "whose id differs only in case)"
            )
        if not self.airflow_db:
            return
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        rel = str(path.relative_to(self.settings.instances_root))
        with create_session() as session:
            row = session.execute(
                select(DagModel.bundle_name, DagModel.relative_fileloc, DagModel.is_stale).where(
                    DagModel.dag_id == instance_id
                )
            ).first()
        if row is not None and (row.bundle_name, row.relative_fileloc) != (
            self.settings.bundle_name,
            rel,
        ):
            # A stale DAG too: its runs, XComs and logs would become the new instance's owners'.
            raise DagIdTakenError(
                instance_id,
                f"DAG id {instance_id!r} is "
                + (
                    "the id of a removed DAG whose history Airflow keeps (delete that DAG first)"
                    if row.is_stale
                    else "already used by another DAG"
                ),
                location=f"{row.relative_fileloc} in bundle {row.bundle_name!r}",
            )

    def _request_parse(self, paths: list[Path]) -> None:
        """Ask the DAG processor to parse ``paths`` now (best effort: refresh_interval still applies)."""
        if not paths or not self.airflow_db:
            return
        try:
            from airflow.models.dagbag import DagPriorityParsingRequest
            from airflow.utils.session import create_session
            from sqlalchemy import select

            with create_session() as session:
                for path in paths:
                    rel = str(path.relative_to(self.settings.instances_root))
                    exists = session.execute(
                        select(DagPriorityParsingRequest.id).where(
                            DagPriorityParsingRequest.bundle_name == self.settings.bundle_name,
                            DagPriorityParsingRequest.relative_fileloc == rel,
                        )
                    ).first()
                    if exists is None:
                        session.add(DagPriorityParsingRequest(self.settings.bundle_name, rel))
        except Exception as err:  # the file is written; parsing merely waits for the next refresh
            log.warning("mlwf-constructors: could not request parsing of %s: %s", paths, err)

    def _hide_dag(self, dag_id: str) -> None:
        """Mark a removed instance's DAG stale at once (the DAG processor would after its refresh)."""
        if not self.airflow_db:
            return
        try:
            from airflow.models.dag import DagModel
            from airflow.utils.session import create_session
            from sqlalchemy import update

            with create_session() as session:
                session.execute(
                    update(DagModel).where(DagModel.dag_id == dag_id).values(is_stale=True)
                )
        except Exception as err:
            log.warning("mlwf-constructors: could not mark DAG %s stale: %s", dag_id, err)
