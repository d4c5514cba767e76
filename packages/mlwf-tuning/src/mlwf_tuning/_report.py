"""The report of a tuning: ``TuningResult`` (the best experiment and the full table, as text for
logs and a dict for XCom) and ``notify_result``, which sends it through any Airflow notifier.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._spec import HyperparameterTuningSpec

#: The XCom key (and notifier context key) under which a tuning publishes ``TuningResult.to_dict()``.
XCOM_KEY = "tuning_result"
#: The context key holding ``TuningResult.render_table()``, for notifier templates.
REPORT_KEY = "tuning_report"


def best_record(
    records: Sequence[ExperimentRecord], metric: str, direction: str
) -> ExperimentRecord | None:
    """Return the succeeded experiment with the best ``metric`` (ties: the lowest index), or None."""
    best: ExperimentRecord | None = None
    for r in sorted(records, key=lambda r: r.index):
        if r.state != ExperimentState.SUCCEEDED or metric not in r.metrics:
            continue
        v = r.metrics[metric]
        if best is None:
            best = r
            continue
        b = best.metrics[metric]
        if (v < b) if direction == "minimize" else (v > b):
            best = r
    return best


@dataclass(frozen=True)
class TuningResult:
    """The outcome of a tuning: the best succeeded experiment and every experiment recorded."""

    tuning_id: str
    metric: str
    direction: str
    experiments: tuple[ExperimentRecord, ...]
    best_index: int | None
    stopped_reason: str | None = None

    @classmethod
    def from_records(
        cls,
        tuning_id: str,
        spec: HyperparameterTuningSpec,
        records: Sequence[ExperimentRecord],
        stopped_reason: str | None = None,
    ) -> TuningResult:
        """Summarize ``records``: the best is the succeeded experiment with the best metric (ties: lowest index)."""
        best = best_record(records, spec.metric, spec.direction)
        return cls(
            tuning_id=tuning_id,
            metric=spec.metric,
            direction=spec.direction,
            experiments=tuple(sorted(records, key=lambda r: r.index)),
            best_index=None if best is None else best.index,
            stopped_reason=stopped_reason,
        )

    @property
    def best(self) -> ExperimentRecord | None:
        """Return the best experiment, or None when no experiment succeeded."""
        return next((r for r in self.experiments if r.index == self.best_index), None)

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Return the hyperparameters of the best experiment."""
        best = self.best
        return None if best is None else dict(best.params)

    @property
    def best_value(self) -> float | None:
        """Return the optimized metric of the best experiment."""
        best = self.best
        return None if best is None else best.metrics[self.metric]

    def count(self, state: ExperimentState) -> int:
        """Return how many experiments are in ``state``."""
        return sum(1 for r in self.experiments if r.state == state)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict: what the tuning DAG pushes as XCom ``tuning_result``."""
        return {
            "tuning_id": self.tuning_id,
            "metric": self.metric,
            "direction": self.direction,
            "best_index": self.best_index,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "counts": {s.value: self.count(s) for s in ExperimentState},
            "stopped_reason": self.stopped_reason,
            "experiments": [r.to_dict() for r in self.experiments],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuningResult:
        """Rebuild a result from ``to_dict``'s output (e.g. pulled from XCom)."""
        return cls(
            tuning_id=data["tuning_id"],
            metric=data["metric"],
            direction=data["direction"],
            experiments=tuple(ExperimentRecord.from_dict(r) for r in data["experiments"]),
            best_index=data["best_index"],
            stopped_reason=data.get("stopped_reason"),
        )

    def render_table(self, max_rows: int | None = None) -> str:
        """Return a plain-text report: a summary line and one row per experiment (best marked ``*``)."""
        params = sorted({name for r in self.experiments for name in r.params})
        header = ["", "#", "state", self.metric, *params, "duration_s", "error"]
        rows: list[list[str]] = []
        shown = self.experiments if max_rows is None else self.experiments[:max_rows]
        for r in shown:
            value = r.metrics.get(self.metric)
            rows.append(
                [
                    "*" if r.index == self.best_index else "",
                    str(r.index),
                    r.state.value,
                    "" if value is None else _fmt(value),
                    *(_fmt(r.params[p]) if p in r.params else "" for p in params),
                    "" if r.duration_s is None else f"{r.duration_s:.2f}",
                    (r.error or "")[:60],
                ]
            )
        widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=False)]
        lines = [_summary(self)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        if len(shown) < len(self.experiments):
            lines.append(f"... {len(self.experiments) - len(shown)} more experiments")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _summary(result: TuningResult) -> str:
    counts = ", ".join(f"{result.count(s)} {s.value}" for s in ExperimentState if result.count(s))
    head = (
        f"tuning {result.tuning_id!r}: {len(result.experiments)} experiments ({counts or 'none'})"
    )
    if result.best_index is None:
        return f"{head}; no experiment succeeded"
    return (
        f"{head}; best {result.metric} ({result.direction}) = {_fmt(result.best_value)} "
        f"at experiment {result.best_index} with {result.best_params}"
        + (f"; stopped: {result.stopped_reason}" if result.stopped_reason else "")
    )


def notify_result(
    notifier: Callable[[dict[str, Any]], object],
    result: TuningResult,
    context: Mapping[str, Any] | None = None,
) -> None:
    """Call ``notifier`` (an Airflow ``BaseNotifier`` or any callable taking a context) with the result.

    The notifier receives ``context`` (in a DAG: the report task's Airflow context; locally:
    empty) plus ``tuning_result`` (``result.to_dict()``) and ``tuning_report`` (the text table),
    so its templated fields can use ``{{ tuning_report }}`` or ``{{ tuning_result.best_value }}``.
    """
    full = dict(context or {})
    full[XCOM_KEY] = result.to_dict()
    full[REPORT_KEY] = result.render_table()
    notifier(full)
