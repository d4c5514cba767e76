"""``ExperimentRecord``: one experiment of a tuning, as planned, run and finished."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mlwf_tuning._errors import ExperimentConflictError


class ExperimentState(enum.StrEnum):
    """Where an experiment is in its life."""

    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PRUNED = "pruned"

    @property
    def finished(self) -> bool:
        """Return whether the experiment has an outcome that must never be lost or repeated."""
        return self in (ExperimentState.SUCCEEDED, ExperimentState.FAILED, ExperimentState.PRUNED)


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment: its position in the tuning, its hyperparameters and its outcome."""

    index: int
    params: dict[str, Any]
    state: ExperimentState = ExperimentState.PLANNED
    metrics: dict[str, float] = field(default_factory=dict)
    #: Intermediate values of the optimized metric reported while running: step -> value.
    intermediate: dict[int, float] = field(default_factory=dict)
    started: datetime | None = None
    finished: datetime | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Return the run time in seconds, once the experiment has started and finished."""
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()

    def evolve(self, **changes: Any) -> ExperimentRecord:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (for XCom, reports and stores)."""
        return {
            "index": self.index,
            "params": dict(self.params),
            "state": self.state.value,
            "metrics": dict(self.metrics),
            "intermediate": {str(k): v for k, v in self.intermediate.items()},
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "duration_s": self.duration_s,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentRecord:
        """Rebuild a record from ``to_dict``'s output."""
        return cls(
            index=int(data["index"]),
            params=dict(data["params"]),
            state=ExperimentState(data["state"]),
            metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
            intermediate={int(k): float(v) for k, v in data.get("intermediate", {}).items()},
            started=datetime.fromisoformat(data["started"]) if data.get("started") else None,
            finished=datetime.fromisoformat(data["finished"]) if data.get("finished") else None,
            error=data.get("error"),
        )


def merge_record(
    tuning_id: str, stored: ExperimentRecord | None, new: ExperimentRecord
) -> ExperimentRecord | None:
    """Return what to store when ``new`` is written over ``stored``, or None when nothing changes.

    Writes are idempotent: writing a finished experiment's outcome again is a no-op. They never
    lose or rewrite an outcome: changing a finished experiment, or the hyperparameters of a
    planned one, raises ``ExperimentConflictError``.
    """
    if stored is None:
        return new
    where = f"tuning {tuning_id!r} experiment {new.index}"
    if stored.params != new.params:
        raise ExperimentConflictError(
            f"{where} is recorded with params {stored.params}; refusing to change them to {new.params}"
        )
    if stored.state.finished:
        same = (stored.state, stored.metrics, stored.error) == (new.state, new.metrics, new.error)
        if same:
            return None
        raise ExperimentConflictError(
            f"{where} already finished as {stored.state.value} (metrics {stored.metrics}); "
            f"refusing to overwrite it with {new.state.value} (metrics {new.metrics})"
        )
    return None if stored == new else new
