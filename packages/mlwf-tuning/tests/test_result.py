"""TuningResult: best experiment, the text report, the XCom dict, and reports through Airflow notifiers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseNotifier
from mlwf_tuning import (
    REPORT_KEY,
    XCOM_KEY,
    ExperimentRecord,
    ExperimentState,
    FloatRange,
    HyperparameterTuningSpec,
    TuningResult,
    notify_result,
    search,
)

SPEC = HyperparameterTuningSpec(
    hyperparameters={"lr": FloatRange(1e-3, 1, log=True)},
    metric="acc",
    direction="maximize",
    n_experiments=3,
)
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 25, 10, 0, 2, tzinfo=UTC)
RECORDS = [
    ExperimentRecord(
        0, {"lr": 0.01}, ExperimentState.SUCCEEDED, {"acc": 0.81}, started=T0, finished=T1
    ),
    ExperimentRecord(
        1, {"lr": 0.1}, ExperimentState.SUCCEEDED, {"acc": 0.93}, started=T0, finished=T1
    ),
    ExperimentRecord(2, {"lr": 0.5}, ExperimentState.FAILED, error="RuntimeError: loss is nan"),
]


def test_best_follows_the_direction() -> None:
    """The best experiment is the succeeded one with the highest metric when maximizing, lowest when minimizing."""
    assert TuningResult.from_records("t", SPEC, RECORDS).best_index == 1
    minimizing = SPEC.model_copy(update={"direction": "minimize"})
    assert TuningResult.from_records("t", minimizing, RECORDS).best_params == {"lr": 0.01}


def test_no_success_means_no_best() -> None:
    """With no succeeded experiment, best, best_params and best_value are None and the report says so."""
    result = TuningResult.from_records("t", SPEC, RECORDS[2:])
    assert (result.best, result.best_params, result.best_value) == (None, None, None)
    assert "no experiment succeeded" in result.render_table()


def test_text_report_lists_every_experiment_and_marks_the_best() -> None:
    """The table has a summary line, a header, one row per experiment, the best starred and errors shown."""
    text = TuningResult.from_records("t", SPEC, RECORDS).render_table()
    lines = text.splitlines()
    assert lines[0].startswith(
        "tuning 't': 3 experiments (2 succeeded, 1 failed); best acc (maximize) = 0.93"
    )
    assert lines[1].split() == ["#", "state", "acc", "lr", "duration_s", "error"]
    assert lines[3].startswith("*") and " 0.93 " in lines[3] and "2.00" in lines[3]
    assert "RuntimeError: loss is nan" in lines[4]
    assert (
        TuningResult.from_records("t", SPEC, RECORDS)
        .render_table(max_rows=1)
        .endswith("... 2 more experiments")
    )


def test_dict_is_json_and_round_trips() -> None:
    """to_dict is JSON-serializable (XCom) and from_dict rebuilds an equal result."""
    result = TuningResult.from_records("t", SPEC, RECORDS, stopped_reason="time budget")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["best_value"] == 0.93 and data["counts"]["failed"] == 1
    assert TuningResult.from_dict(data) == result


class CollectingNotifier(BaseNotifier):
    """A real Airflow notifier whose templated message renders the tuning report."""

    template_fields = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.sent: list[str] = []

    def notify(self, context: Any) -> None:
        """Keep the rendered message."""
        self.sent.append(self.message)


def test_airflow_notifier_renders_the_report() -> None:
    """An Airflow BaseNotifier gets the result in its context and renders {{ tuning_result }} and {{ tuning_report }}."""
    notifier = CollectingNotifier(
        "best {{ tuning_result.best_value }} of {{ tuning_result.tuning_id }}\n{{ tuning_report }}"
    )
    notify_result(notifier, TuningResult.from_records("t", SPEC, RECORDS), {"run_id": "r1"})
    assert len(notifier.sent) == 1
    assert notifier.sent[0].startswith("best 0.93 of t\ntuning 't': 3 experiments")


def test_search_reports_through_its_notifier() -> None:
    """search(notifier=...) calls the notifier once with the final result."""
    contexts: list[dict[str, Any]] = []
    result = search(SPEC, lambda p: {"acc": 1 - p["lr"]}, notifier=contexts.append)
    assert len(contexts) == 1
    assert (
        contexts[0][XCOM_KEY] == result.to_dict()
        and contexts[0][REPORT_KEY] == result.render_table()
    )
