"""Durable experiment stores: the ``ExperimentStore`` protocol, in memory and on SQLAlchemy."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa

from mlwf_tuning._errors import TuningSpecMismatch
from mlwf_tuning._records import ExperimentRecord, ExperimentState, merge_record

TABLE_PREFIX = "mlwf_tuning_"


@runtime_checkable
class ExperimentStore(Protocol):
    """Where a tuning's experiments are recorded, so that a tuning can resume after a stop."""

    def open_tuning(self, tuning_id: str, spec_json: str) -> None:
        """Create the tuning, or check that the stored one has the same spec (``TuningSpecMismatch``)."""

    def load(self, tuning_id: str) -> list[ExperimentRecord]:
        """Return every recorded experiment of the tuning, ordered by index."""

    def save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        """Write ``records`` at once, keyed by (tuning_id, index), with ``merge_record``'s rules."""


def _spec_mismatch(tuning_id: str, stored: str, given: str) -> TuningSpecMismatch:
    return TuningSpecMismatch(
        f"tuning {tuning_id!r} is already recorded with a different spec; resume it with the "
        f"same spec or use another tuning id (stored: {stored}; given: {given})"
    )


class InMemoryExperimentStore:
    """An ``ExperimentStore`` that lives as long as the object (the default of a local search)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, str] = {}
        self._records: dict[str, dict[int, ExperimentRecord]] = {}

    def open_tuning(self, tuning_id: str, spec_json: str) -> None:
        """Create the tuning, or check that the stored one has the same spec."""
        with self._lock:
            stored = self._specs.setdefault(tuning_id, spec_json)
            if stored != spec_json:
                raise _spec_mismatch(tuning_id, stored, spec_json)
            self._records.setdefault(tuning_id, {})

    def load(self, tuning_id: str) -> list[ExperimentRecord]:
        """Return every recorded experiment of the tuning, ordered by index."""
        with self._lock:
            return [r for _, r in sorted(self._records.get(tuning_id, {}).items())]

    def save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        """Write ``records`` at once (all or none), keyed by (tuning_id, index)."""
        with self._lock:
            table = self._records.setdefault(tuning_id, {})
            merged = {r.index: merge_record(tuning_id, table.get(r.index), r) for r in records}
            table.update({i: r for i, r in merged.items() if r is not None})


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    tunings = sa.Table(
        f"{prefix}tunings",
        metadata,
        sa.Column("tuning_id", sa.String(250), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    experiments = sa.Table(
        f"{prefix}experiments",
        metadata,
        sa.Column("tuning_id", sa.String(250), primary_key=True),
        sa.Column("experiment_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("intermediate", sa.Text, nullable=False),
        sa.Column("started", sa.DateTime(timezone=True)),
        sa.Column("finished", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    return metadata, tunings, experiments


def _utc(value: datetime | None) -> datetime | None:
    # SQLite drops the time zone; every timestamp we write is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SqlExperimentStore:
    """An ``ExperimentStore`` on any SQLAlchemy database (tables ``mlwf_tuning_tunings``/``_experiments``).

    ``SqlExperimentStore("sqlite:///tuning.db")``; the tables are created when missing. Each
    ``save`` is one transaction, so a batch of planned experiments is recorded whole or not at all.
    """

    def __init__(self, url: str | sa.Engine) -> None:
        self.engine = sa.create_engine(url) if isinstance(url, str) else url
        self._metadata, self._tunings, self._experiments = _tables(TABLE_PREFIX)
        self._metadata.create_all(self.engine)

    def open_tuning(self, tuning_id: str, spec_json: str) -> None:
        """Create the tuning, or check that the stored one has the same spec."""
        with self.engine.begin() as conn:
            stored = conn.execute(
                sa.select(self._tunings.c.spec).where(self._tunings.c.tuning_id == tuning_id)
            ).scalar_one_or_none()
            if stored is None:
                conn.execute(
                    self._tunings.insert().values(
                        tuning_id=tuning_id, spec=spec_json, created=datetime.now(UTC)
                    )
                )
            elif stored != spec_json:
                raise _spec_mismatch(tuning_id, stored, spec_json)

    def _record(self, row: Any) -> ExperimentRecord:
        return ExperimentRecord(
            index=row.experiment_index,
            params=json.loads(row.params),
            state=ExperimentState(row.state),
            metrics=json.loads(row.metrics),
            intermediate={int(k): v for k, v in json.loads(row.intermediate).items()},
            started=_utc(row.started),
            finished=_utc(row.finished),
            error=row.error,
        )

    def load(self, tuning_id: str) -> list[ExperimentRecord]:
        """Return every recorded experiment of the tuning, ordered by index."""
        t = self._experiments
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t).where(t.c.tuning_id == tuning_id).order_by(t.c.experiment_index)
            ).all()
        return [self._record(row) for row in rows]

    def save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        """Write ``records`` in one transaction, keyed by (tuning_id, index)."""
        t = self._experiments
        with self.engine.begin() as conn:
            indexes = [r.index for r in records]
            rows = conn.execute(
                sa.select(t).where(t.c.tuning_id == tuning_id, t.c.experiment_index.in_(indexes))
            ).all()
            stored = {row.experiment_index: self._record(row) for row in rows}
            for record in records:
                merged = merge_record(tuning_id, stored.get(record.index), record)
                if merged is None:
                    continue
                values = {
                    "state": merged.state.value,
                    "params": json.dumps(merged.params, sort_keys=True),
                    "metrics": json.dumps(merged.metrics, sort_keys=True),
                    "intermediate": json.dumps({str(k): v for k, v in merged.intermediate.items()}),
                    "started": merged.started,
                    "finished": merged.finished,
                    "error": merged.error,
                }
                if record.index in stored:
                    conn.execute(
                        t.update()
                        .where(t.c.tuning_id == tuning_id, t.c.experiment_index == record.index)
                        .values(**values)
                    )
                else:
                    conn.execute(
                        t.insert().values(
                            tuning_id=tuning_id, experiment_index=record.index, **values
                        )
                    )
                stored[record.index] = merged
