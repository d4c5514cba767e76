"""Durable experiment stores: the ``ExperimentStore`` protocol, in memory and on SQLAlchemy."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import sqlalchemy as sa
from mlwf_constructors import as_utc

from mlwf_tuning._errors import (
    ExperimentConflictError,
    ExperimentNotFoundError,
    TuningSpecMismatchError,
)
from mlwf_tuning._records import ExperimentRecord, ExperimentState, merge_record

TABLE_PREFIX = "mlwf_tuning_"
#: Seconds a SQLite store waits for another writer before failing ("database is locked").
DEFAULT_SQLITE_TIMEOUT_S = 30.0


class StoredTuning(NamedTuple):
    """A tuning the store holds: its id, when it was opened and its spec JSON."""

    tuning_id: str
    created: datetime
    spec_json: str


class ExperimentRun(NamedTuple):
    """The run the tuner created for an experiment: its run id and the secret token in its ``conf``."""

    run_id: str
    token: str


@runtime_checkable
class ExperimentStore(Protocol):
    """Where a tuning's experiments are recorded, so that a tuning can resume after a stop."""

    def open_tuning(self, tuning_id: str, spec_json: str) -> None:
        """Create the tuning, or check that the stored one has the same spec (``TuningSpecMismatchError``)."""

    def load(self, tuning_id: str) -> list[ExperimentRecord]:
        """Return every recorded experiment of the tuning, ordered by index."""

    def save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        """Write ``records`` at once, keyed by (tuning_id, index), with ``merge_record``'s rules."""

    def assign_run(self, tuning_id: str, index: int, run: ExperimentRun) -> ExperimentRun:
        """Record ``run`` as experiment ``index``'s run unless one is recorded; return the recorded one."""

    def experiment_run(self, tuning_id: str, index: int) -> ExperimentRun | None:
        """Return the run recorded for experiment ``index`` (``assign_run``), or None."""


@runtime_checkable
class IntermediateStore(ExperimentStore, Protocol):
    """An ``ExperimentStore`` that experiments report intermediate values to (``report_intermediate``)."""

    def tuning_spec(self, tuning_id: str) -> str | None:
        """Return the spec JSON the tuning was opened with, or None for an unknown tuning."""

    def append_intermediate(
        self, tuning_id: str, index: int, step: int, value: float
    ) -> dict[int, float]:
        """Record ``value`` at ``step`` of an unfinished experiment; return its whole curve.

        Idempotent per step (reporting a step again replaces its value: a retried task's run is
        the one that counts); never touches the experiment's other fields, so it cannot undo a
        concurrent ``save``. Raises ``ExperimentNotFoundError`` for an unknown experiment and
        ``ExperimentConflictError`` for a new value on a finished one.
        """


def check_intermediate(step: object, value: object) -> tuple[int, float]:
    """Return ``(step, value)`` as ``(int, float)``; raise ``ValueError`` naming a bad one."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"an intermediate step must be an int >= 0; got {step!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(
            f"an intermediate value must be a finite number; got {value!r} at step {step}"
        )
    return step, float(value)


def _finished_conflict(
    tuning_id: str, index: int, state: ExperimentState, step: int, value: float
) -> ExperimentConflictError:
    return ExperimentConflictError(
        f"tuning {tuning_id!r} experiment {index} already finished as {state.value}; refusing "
        f"to record a new intermediate value {value} at step {step}"
    )


def _not_found(tuning_id: str, index: int, where: str) -> ExperimentNotFoundError:
    return ExperimentNotFoundError(
        f"tuning {tuning_id!r} has no experiment {index} in {where} (is the experiment reporting "
        "to the store its tuner records in?)"
    )


def _spec_mismatch(tuning_id: str, stored: str, given: str) -> TuningSpecMismatchError:
    return TuningSpecMismatchError(
        f"tuning {tuning_id!r} is already recorded with a different spec; resume it with the "
        f"same spec or use another tuning id (stored: {stored}; given: {given})"
    )


class InMemoryExperimentStore:
    """An ``ExperimentStore`` that lives as long as the object (the default of a local search)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, str] = {}
        self._records: dict[str, dict[int, ExperimentRecord]] = {}
        # Reported intermediate values, apart from the records (as in SqlExperimentStore).
        self._curves: dict[tuple[str, int], dict[int, float]] = {}
        self._runs: dict[tuple[str, int], ExperimentRun] = {}

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
            return [
                _with_curve(r, self._curves.get((tuning_id, r.index)))
                for _, r in sorted(self._records.get(tuning_id, {}).items())
            ]

    def save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        """Write ``records`` at once (all or none), keyed by (tuning_id, index)."""
        with self._lock:
            table = self._records.setdefault(tuning_id, {})
            merged = {r.index: merge_record(tuning_id, table.get(r.index), r) for r in records}
            table.update({i: r for i, r in merged.items() if r is not None})

    def tuning_spec(self, tuning_id: str) -> str | None:
        """Return the spec JSON the tuning was opened with, or None."""
        with self._lock:
            return self._specs.get(tuning_id)

    def assign_run(self, tuning_id: str, index: int, run: ExperimentRun) -> ExperimentRun:
        """Record ``run`` as experiment ``index``'s run unless one is recorded; return the recorded one."""
        with self._lock:
            return self._runs.setdefault((tuning_id, index), run)

    def experiment_run(self, tuning_id: str, index: int) -> ExperimentRun | None:
        """Return the run recorded for experiment ``index``, or None."""
        with self._lock:
            return self._runs.get((tuning_id, index))

    def append_intermediate(
        self, tuning_id: str, index: int, step: int, value: float
    ) -> dict[int, float]:
        """Record ``value`` at ``step`` of an unfinished experiment; return its whole curve."""
        step, value = check_intermediate(step, value)
        with self._lock:
            record = self._records.get(tuning_id, {}).get(index)
            if record is None:
                raise _not_found(tuning_id, index, "this in-memory store")
            curve = self._curves.setdefault((tuning_id, index), {})
            prior = curve.get(step, record.intermediate.get(step))
            if prior != value:
                if record.state.finished:
                    raise _finished_conflict(tuning_id, index, record.state, step, value)
                curve[step] = value
            return {**record.intermediate, **curve}


def _with_curve(record: ExperimentRecord, reported: Mapping[int, float] | None) -> ExperimentRecord:
    """Return ``record`` with the separately reported values added to its curve (they win)."""
    if not reported:
        return record
    return record.evolve(intermediate=dict(sorted({**record.intermediate, **reported}.items())))


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table, sa.Table]:
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
    # Added in 0.1 after the first two (create_all adds it to existing databases): one row per
    # reported step, so a report never rewrites an experiment's row and no save can undo it.
    intermediate = sa.Table(
        f"{prefix}intermediate",
        metadata,
        sa.Column("tuning_id", sa.String(250), primary_key=True),
        sa.Column("experiment_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("step", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("reported", sa.DateTime(timezone=True), nullable=False),
    )
    # Added in 0.1 as a table of its own for the same reason: the run the tuner created for each
    # experiment and the token it put in the run's conf; reports are accepted from that run only.
    runs = sa.Table(
        f"{prefix}experiment_runs",
        metadata,
        sa.Column("tuning_id", sa.String(250), primary_key=True),
        sa.Column("experiment_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    return metadata, tunings, experiments, intermediate, runs


class SqlExperimentStore:
    """An ``ExperimentStore`` on any SQLAlchemy database (tables ``mlwf_tuning_tunings``/``_experiments``/``_intermediate``).

    ``SqlExperimentStore("sqlite:///tuning.db")``; the tables are created when missing. Each
    ``save`` is one transaction, so a batch of planned experiments is recorded whole or not at all.
    Intermediate values reported while an experiment runs (``append_intermediate``) are rows of
    their own, merged into the records by ``load``.
    """

    def __init__(
        self, url: str | sa.Engine, *, sqlite_timeout_s: float = DEFAULT_SQLITE_TIMEOUT_S
    ) -> None:
        if isinstance(url, str):
            sqlite = sa.engine.make_url(url).get_backend_name() == "sqlite"
            connect_args = {"timeout": float(sqlite_timeout_s)} if sqlite else {}
            self.engine = sa.create_engine(url, connect_args=connect_args)
        else:
            self.engine = url
        if self.engine.dialect.name == "sqlite":
            _begin_immediate(self.engine)
        # Transactions that write go through this engine (same pool): on SQLite they begin
        # IMMEDIATE, taking the write lock before their first read; reads stay shared.
        self._writer = self.engine.execution_options(**{_WRITE_OPTION: True})
        (
            self._metadata,
            self._tunings,
            self._experiments,
            self._intermediate,
            self._runs,
        ) = _tables(TABLE_PREFIX)
        try:
            self._metadata.create_all(self.engine)
        except sa.exc.DBAPIError:
            # Another process created a table between our check and our CREATE: check again.
            self._metadata.create_all(self.engine)

    def open_tuning(self, tuning_id: str, spec_json: str) -> None:
        """Create the tuning, or check that the stored one has the same spec."""
        try:
            self._open(tuning_id, spec_json)
        except sa.exc.IntegrityError:
            # Another opener inserted the row between our read and our insert: compare with it.
            self._open(tuning_id, spec_json)

    def _open(self, tuning_id: str, spec_json: str) -> None:
        with self._writer.begin() as conn:
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

    def assign_run(self, tuning_id: str, index: int, run: ExperimentRun) -> ExperimentRun:
        """Record ``run`` as experiment ``index``'s run unless one is recorded; return the recorded one."""
        stored = self.experiment_run(tuning_id, index)
        if stored is not None:
            return stored
        try:
            with self._writer.begin() as conn:
                conn.execute(
                    self._runs.insert().values(
                        tuning_id=tuning_id,
                        experiment_index=index,
                        run_id=run.run_id,
                        token=run.token,
                        created=datetime.now(UTC),
                    )
                )
        except sa.exc.IntegrityError:
            pass  # another attempt recorded its run first: that one is the experiment's run
        stored = self.experiment_run(tuning_id, index)
        assert stored is not None
        return stored

    def experiment_run(self, tuning_id: str, index: int) -> ExperimentRun | None:
        """Return the run recorded for experiment ``index``, or None."""
        r = self._runs
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(r.c.run_id, r.c.token).where(
                    r.c.tuning_id == tuning_id, r.c.experiment_index == index
                )
            ).one_or_none()
        return None if row is None else ExperimentRun(row.run_id, row.token)

    def _record(self, row: Any) -> ExperimentRecord:
        return ExperimentRecord(
            index=row.experiment_index,
            params=json.loads(row.params),
            state=ExperimentState(row.state),
            metrics=json.loads(row.metrics),
            intermediate={int(k): v for k, v in json.loads(row.intermediate).items()},
            started=as_utc(row.started),
            finished=as_utc(row.finished),
            error=row.error,
        )

    def load(self, tuning_id: str) -> list[ExperimentRecord]:
        """Return every recorded experiment of the tuning, ordered by index."""
        t, i = self._experiments, self._intermediate
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t).where(t.c.tuning_id == tuning_id).order_by(t.c.experiment_index)
            ).all()
            steps = conn.execute(
                sa.select(i.c.experiment_index, i.c.step, i.c.value).where(
                    i.c.tuning_id == tuning_id
                )
            ).all()
        reported: dict[int, dict[int, float]] = {}
        for index, step, value in steps:
            reported.setdefault(index, {})[step] = value
        return [_with_curve(self._record(row), reported.get(row.experiment_index)) for row in rows]

    def tuning_ids(self) -> list[tuple[str, datetime]]:
        """Return ``(tuning id, opened at)`` of every tuning, newest first (ties: by id)."""
        t = self._tunings
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.tuning_id, t.c.created).order_by(t.c.created.desc(), t.c.tuning_id)
            ).all()
        return [(tuning_id, as_utc(created)) for tuning_id, created in rows]

    def tunings(self, tuning_ids: Sequence[str]) -> list[StoredTuning]:
        """Return the stored tunings among ``tuning_ids`` (unknown ids left out), in that order."""
        t = self._tunings
        found: dict[str, StoredTuning] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(tuning_ids), _IN_BATCH):
                batch = list(tuning_ids[start : start + _IN_BATCH])
                for tuning_id, created, spec in conn.execute(
                    sa.select(t.c.tuning_id, t.c.created, t.c.spec).where(t.c.tuning_id.in_(batch))
                ):
                    found[tuning_id] = StoredTuning(tuning_id, as_utc(created), spec)
        return [found[i] for i in tuning_ids if i in found]

    def outcomes(self, tuning_ids: Sequence[str]) -> dict[str, list[tuple[int, str, str]]]:
        """Return ``(index, state, metrics JSON)`` of every experiment of each tuning, as stored.

        The columns a summary needs only (no parameters, no curves), unparsed: a reader decides
        what to do with a value it cannot read or a state a newer version wrote.
        """
        t = self._experiments
        found: dict[str, list[tuple[int, str, str]]] = {i: [] for i in tuning_ids}
        with self.engine.connect() as conn:
            for start in range(0, len(tuning_ids), _IN_BATCH):
                batch = list(tuning_ids[start : start + _IN_BATCH])
                for tuning_id, index, state, metrics in conn.execute(
                    sa.select(t.c.tuning_id, t.c.experiment_index, t.c.state, t.c.metrics)
                    .where(t.c.tuning_id.in_(batch))
                    .order_by(t.c.tuning_id, t.c.experiment_index)
                ):
                    found[tuning_id].append((index, state, metrics))
        return found

    def tuning_spec(self, tuning_id: str) -> str | None:
        """Return the spec JSON the tuning was opened with, or None."""
        with self.engine.connect() as conn:
            spec: str | None = conn.execute(
                sa.select(self._tunings.c.spec).where(self._tunings.c.tuning_id == tuning_id)
            ).scalar_one_or_none()
        return spec

    def append_intermediate(
        self, tuning_id: str, index: int, step: int, value: float
    ) -> dict[int, float]:
        """Record ``value`` at ``step`` of an unfinished experiment in one transaction; return its curve.

        One row per step in ``mlwf_tuning_intermediate``: the experiment's row is only read
        (locked on PostgreSQL), so no concurrent ``save`` of it is undone, and reporters of
        different experiments never wait for each other.
        """
        step, value = check_intermediate(step, value)
        try:
            return self._append(tuning_id, index, step, value)
        except sa.exc.IntegrityError:
            # The same step was inserted concurrently (two attempts of one task): update it now.
            return self._append(tuning_id, index, step, value)

    def _append(self, tuning_id: str, index: int, step: int, value: float) -> dict[int, float]:
        t, i = self._experiments, self._intermediate
        of_experiment = (i.c.tuning_id == tuning_id, i.c.experiment_index == index)
        now = datetime.now(UTC)
        with self._writer.begin() as conn:
            prior = conn.execute(
                sa.select(i.c.value).where(*of_experiment, i.c.step == step)
            ).scalar_one_or_none()
            if prior is None:
                conn.execute(
                    i.insert().values(
                        tuning_id=tuning_id,
                        experiment_index=index,
                        step=step,
                        value=value,
                        reported=now,
                    )
                )
            elif prior != value:
                conn.execute(
                    i.update()
                    .where(*of_experiment, i.c.step == step)
                    .values(value=value, reported=now)
                )
            # Read the experiment after writing: SQLite then holds the write lock, PostgreSQL
            # the row lock, so a save finishing it concurrently comes wholly before or after.
            row = conn.execute(
                sa.select(t.c.state, t.c.intermediate)
                .where(t.c.tuning_id == tuning_id, t.c.experiment_index == index)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise _not_found(tuning_id, index, f"the store {self.engine.url!r}")
            state = ExperimentState(row.state)
            if state.finished and prior != value:
                raise _finished_conflict(tuning_id, index, state, step, value)  # rolls back
            curve = {int(k): float(v) for k, v in json.loads(row.intermediate).items()}
            curve.update(
                {
                    s: v
                    for s, v in conn.execute(sa.select(i.c.step, i.c.value).where(*of_experiment))
                }
            )
        return dict(sorted(curve.items()))

    def save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        """Write ``records`` in one transaction, keyed by (tuning_id, index).

        The read and the write are one critical section per tuning: the tuning's row is locked
        (``SELECT ... FOR UPDATE`` on PostgreSQL and MariaDB; SQLite transactions take the write
        lock when they begin), so a concurrent save never writes over an outcome it did not see.
        """
        try:
            self._save(tuning_id, records)
        except sa.exc.IntegrityError:
            # A tuning saved without open_tuning has no row to lock: two first inserts of one
            # experiment can race. Saving again merges with the row the other one wrote.
            self._save(tuning_id, records)

    def _save(self, tuning_id: str, records: Sequence[ExperimentRecord]) -> None:
        t = self._experiments
        with self._writer.begin() as conn:
            conn.execute(
                sa.select(self._tunings.c.tuning_id)
                .where(self._tunings.c.tuning_id == tuning_id)
                .with_for_update()
            )
            indexes = [r.index for r in records]
            rows = conn.execute(
                sa.select(t)
                .where(t.c.tuning_id == tuning_id, t.c.experiment_index.in_(indexes))
                .with_for_update()
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


_WRITE_OPTION = "mlwf_tuning_write"
#: Ids per ``IN (...)`` list (SQLite's bound-parameter limit is 999 on old builds).
_IN_BATCH = 500


def _begin_immediate(engine: sa.Engine) -> None:
    """Make the writing transactions of a SQLite ``engine`` take the write lock when they begin.

    pysqlite begins a transaction lazily, at the first write, so two ``save``s could both read,
    then one fail with "database is locked" (SQLite cannot upgrade both) or, across
    connections, write over what the other wrote. ``BEGIN IMMEDIATE`` makes the read and the
    write one critical section; the busy timeout makes the second writer wait for the first.
    """
    if sa.event.contains(engine, "begin", _on_begin):
        return
    sa.event.listen(engine, "connect", _on_connect)
    sa.event.listen(engine, "begin", _on_begin)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would emit a deferred one).
    dbapi_connection.isolation_level = None


def _on_begin(conn: sa.Connection) -> None:
    writes = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
