"""Operations on instances that keep the store, the DAG folder and Airflow consistent.

The store is the source of truth. Every operation validates everything first, then writes the
store (one transaction), then the generated file; if the file cannot be written the store change
is undone, so nothing is half-written. Afterwards Airflow's DAG processor is asked to parse the
file at once (a ``dag_priority_parsing_request`` row, what ``PUT /api/v2/parseDagFile`` inserts),
so a new or changed instance appears within seconds without lowering ``refresh_interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwf_constructors import _materialize as files
from mlwf_constructors._errors import ConstructorsError, InstanceExistsError, StoreError
from mlwf_constructors._ids import check_instance_id
from mlwf_constructors._registry import RegisteredConstructor, discover, lookup
from mlwf_constructors._store import InstanceRecord, InstanceStore

log = logging.getLogger(__name__)


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
        modules = conf.get("mlwf_constructors", "bundle_modules", fallback="")
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
            bundle_modules=tuple(m.strip() for m in modules.split(",") if m.strip()),
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
        self.store.migrate()
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
        enabled: bool = True,
    ) -> InstanceRecord:
        """Validate and store a new instance, then write its DAG file.

        Raises InvalidInstanceIdError, ConstructorNotFoundError, ParameterValidationError,
        InstanceExistsError (id, DAG id or file taken) and leaves nothing behind on any error.
        """
        check_instance_id(instance_id)
        registered = self.constructor(constructor)
        complete = registered.cls.validate(values)
        registered.cls().build(instance_id, complete)  # the constructor accepts these values
        self._check_free(instance_id)
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
        )
        self.store.create(record)
        try:
            self._materialize(record)
        except BaseException:
            self.store.delete(instance_id)
            raise
        return record

    def update(
        self,
        instance_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> InstanceRecord:
        """Change an instance's values (merged over the stored ones) and/or its enabled flag."""
        old = self.store.get(check_instance_id(instance_id))
        registered = self.constructor(old.constructor)
        new = old
        if values is not None:
            complete = registered.cls.validate({**old.values, **values})
            registered.cls().build(instance_id, complete)
            new = replace(new, values=complete, constructor_version=registered.version)
        if enabled is not None:
            new = replace(new, enabled=enabled)
        new = replace(new, updated_at=datetime.now(UTC))
        self.store.replace(new)
        try:
            self._materialize(new)
        except BaseException:
            self.store.replace(old)
            raise
        return new

    def delete(self, instance_id: str) -> None:
        """Delete an instance and its DAG file; its DAG disappears from Airflow."""
        self.store.get(check_instance_id(instance_id))
        self.store.delete(instance_id)
        if files.remove(self.path(instance_id)):
            self._hide_dag(instance_id)

    def sync(self) -> SyncReport:
        """Make the generated files match the store: re-create missing or altered ones, remove orphans."""
        report = SyncReport()
        wanted: set[Path] = set()
        for record in self.store.list():
            path = self.path(record.instance_id)
            if not record.enabled:
                continue
            wanted.add(path)
            try:
                text = files.render(record, self.constructor(record.constructor))
                changed = files.write_atomic(path, text)
            except (ConstructorsError, OSError) as err:
                report.failed[record.instance_id] = str(err)
                continue
            (report.written if changed else report.unchanged).append(record.instance_id)
        folder = files.generated_dir(self.settings.instances_root)
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            if path not in wanted and files.is_generated(path):
                path.unlink()
                report.removed.append(path.name)
        for stale in folder.glob(".tmp-*.part") if folder.is_dir() else []:
            stale.unlink(missing_ok=True)  # left by a crash between write and replace
        self._request_parse([self.path(i) for i in report.written])
        return report

    # -- internals ------------------------------------------------------------------------

    def _materialize(self, record: InstanceRecord) -> None:
        path = self.path(record.instance_id)
        if record.enabled:
            if path.exists() and not files.is_generated(path):
                raise InstanceExistsError(
                    f"file {path} exists and was not generated by mlwf-constructors"
                )
            if files.write_atomic(path, files.render(record, self.constructor(record.constructor))):
                self._request_parse([path])
        elif files.remove(path):
            self._hide_dag(record.instance_id)

    def _check_free(self, instance_id: str) -> None:
        """Raise InstanceExistsError if a file or a DAG from elsewhere already uses the id."""
        path = self.path(instance_id)
        if path.exists() and not files.is_generated(path):
            raise InstanceExistsError(
                f"file {path} exists and was not generated by mlwf-constructors"
            )
        if not self.airflow_db:
            return
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        rel = str(path.relative_to(self.settings.instances_root))
        with create_session() as session:
            row = session.execute(
                select(DagModel.relative_fileloc, DagModel.is_stale).where(
                    DagModel.dag_id == instance_id
                )
            ).first()
        if row is not None and not row.is_stale and row.relative_fileloc != rel:
            raise InstanceExistsError(
                f"DAG id {instance_id!r} is already used by {row.relative_fileloc}"
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
