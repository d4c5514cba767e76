"""Early stopping inside DAG experiments, on a real Airflow instance (LocalExecutor).

The package's instance (``conftest.py``) serves the module. Its DAG folder holds, from
``dags_tuning_stopping/``, two experiment DAGs and a grid tuning with median stopping over each:
``stopping_experiments``, whose ``train`` task reports a learning curve with
``report_intermediate`` (8 curve qualities, half of them clearly worse), and
``stopping_epoch_experiments``, a ``TrainEvaluateWorkflow`` whose trainer child process reports
its accuracy per epoch. Both tunings start at once; the store is a SQLite file the test reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi
from mlwf_tuning import ExperimentState, SqlExperimentStore

EXPERIMENTS = "stopping_experiments"
TUNING = "tune_stopping"
EPOCH_EXPERIMENTS = "stopping_epoch_experiments"
EPOCH_TUNING = "tune_epochs"
EPOCHS = 5  # as in dags_tuning_stopping/epoch_trainer.py
STEPS = 6  # as in dags_tuning_stopping/stopping_dags.py
QUALITIES = [0.1, 0.15, 0.2, 0.25, 0.8, 0.85, 0.9, 0.95]


def experiment_runs(
    api: AirflowApi, dag_id: str, tuning_run_id: str, param: str
) -> dict[float, dict[str, Any]]:
    """Return the experiment runs of a tuning run by the value of ``param`` in their conf (matched by the conf's tuning id: run ids end with a random part)."""
    return {
        r["conf"][param]: r
        for r in api.runs(dag_id, run_id_prefix="exp")
        if str(((r.get("conf") or {}).get("mlwf_tuning") or {}).get("tuning_id", "")).endswith(
            f"/{tuning_run_id}"
        )
    }


def task_states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {task_id: state for (task_id, _), state in api.task_states(dag_id, run_id).items()}


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Iterator[AirflowApi]:
    with AirflowApi.for_instance(instance) as client:
        yield client


@pytest.fixture(scope="module")
def tunings(api: AirflowApi) -> dict[str, str]:
    """Start both tunings at once (they share the instance's slots); return their run ids."""
    api.unpause(EXPERIMENTS)
    api.unpause(EPOCH_EXPERIMENTS)
    return {TUNING: api.trigger(TUNING), EPOCH_TUNING: api.trigger(EPOCH_TUNING)}


def test_median_stopping_prunes_the_bad_experiments_early(
    api: AirflowApi, tunings: dict[str, str], store: SqlExperimentStore
) -> None:
    """A grid of 8 curves, half clearly worse: some are pruned mid-run with their curve, the best succeeds, the tuning counts them."""
    steps, qualities = STEPS, QUALITIES
    run_id = tunings[TUNING]
    assert api.wait_run(TUNING, run_id, timeout=150) == "success"
    records = {r.params["quality"]: r for r in store.load(f"{TUNING}/{run_id}")}
    assert sorted(records) == qualities
    pruned = {q: r for q, r in records.items() if r.state == ExperimentState.PRUNED}
    succeeded = {q: r for q, r in records.items() if r.state == ExperimentState.SUCCEEDED}
    assert len(pruned) + len(succeeded) == len(qualities), records

    # The worst curve runs last (grid order of seed 0), after two successes at least: pruned.
    assert 0.1 in pruned
    for quality, record in pruned.items():
        curve = record.intermediate
        last = max(curve)
        assert sorted(curve) == list(range(last + 1))  # every step up to the stop, in the store
        assert 2 <= last < steps - 1  # past the warm-up, before the end
        assert curve == {s: pytest.approx(quality * (s + 1) / steps) for s in curve}
        assert f"stopped at step {last}: value" in (record.error or "")
        assert "worse than the median" in (record.error or "")
    for quality, record in succeeded.items():
        assert record.intermediate == {
            s: pytest.approx(quality * (s + 1) / steps) for s in range(steps)
        }
        assert record.metrics["score"] == pytest.approx(quality)

    # A pruned experiment's run skipped its training task and what follows; the run succeeded.
    runs = experiment_runs(api, EXPERIMENTS, run_id, "quality")
    assert len(runs) == len(qualities)
    for quality in pruned:
        run = runs[quality]
        assert run["state"] == "success"
        states = task_states(api, EXPERIMENTS, run["dag_run_id"])
        assert states == {"train": "skipped", "workflow_result": "skipped"}

    result = api.xcom(TUNING, run_id, "report", "tuning_result")
    assert result["counts"]["pruned"] == len(pruned)
    assert result["counts"]["succeeded"] == len(succeeded)
    assert result["counts"]["failed"] == 0
    assert result["best_params"] == {"quality": max(qualities)}  # the best is never below a median


def test_train_evaluate_workflow_prunes_a_training_by_its_epochs(
    api: AirflowApi, tunings: dict[str, str], store: SqlExperimentStore
) -> None:
    """The trainer's per-epoch accuracy reaches the tuning; the worst C, run last, is pruned: trainer killed, task skipped."""
    run_id = tunings[EPOCH_TUNING]
    assert api.wait_run(EPOCH_TUNING, run_id, timeout=150) == "success"
    records = {r.params["C"]: r for r in store.load(f"{EPOCH_TUNING}/{run_id}")}
    assert sorted(records) == [0.05, 0.1, 1.0, 2.0]
    # Grid order (seed 0): 0.1, 2.0, 1.0, 0.05: the last starts after two experiments succeeded.
    worst = records[0.05]
    assert worst.state == ExperimentState.PRUNED
    last = max(worst.intermediate)
    assert 1 <= last < EPOCHS - 1 and sorted(worst.intermediate) == list(range(last + 1))
    assert "worse than the median" in (worst.error or "")
    for c in (0.1, 1.0, 2.0):
        record = records[c]
        assert record.state == ExperimentState.SUCCEEDED
        level = min(c, 1.0)
        assert record.intermediate == {
            e: pytest.approx(level * (e + 1) / EPOCHS) for e in range(EPOCHS)
        }
        assert 0.0 < record.metrics["accuracy"] <= 1.0  # the validated model's, not the curve's
    run = experiment_runs(api, EPOCH_EXPERIMENTS, run_id, "C")[0.05]
    assert run["state"] == "success"
    assert task_states(api, EPOCH_EXPERIMENTS, run["dag_run_id"]) == {
        "hyperparameters": "success",
        "train": "skipped",
        "workflow_result": "skipped",
    }
    result = api.xcom(EPOCH_TUNING, run_id, "report", "tuning_result")
    assert result["counts"]["pruned"] == 1 and result["counts"]["succeeded"] == 3


def test_the_tuning_tab_shows_every_experiment_and_draws_them(
    api: AirflowApi, tunings: dict[str, str], screenshots: Any, signed_in_page: Any
) -> None:
    """Issue 14: mlwf-ui's Tuning tab in Chromium lists every experiment and plots what the API holds.

    The plots' data are read from the ECharts instances the page drew (``globalThis.mlwfCharts``),
    and compared with the tuning API's answer for the same run.
    """
    run_id = tunings[TUNING]
    assert api.wait_run(TUNING, run_id, timeout=150) == "success"
    with api.client_for("/mlwf/tuning") as tuning_api:
        detail = tuning_api.get(f"/tunings/{TUNING}/{run_id}").json()
    assert detail["run_state"] == "success" and detail["problem"] is None
    experiments = detail["experiments"]
    measured = [e for e in experiments if "score" in e["metrics"]]
    curves = [e for e in experiments if e["intermediate"]]
    pruned = [e for e in curves if e["state"] == "pruned"]
    assert len(experiments) == len(QUALITIES) and pruned and len(curves) > len(pruned)

    with signed_in_page(api) as page:
        page.goto(f"{api.url}/plugin/mlwf-tunings")
        page.wait_for_selector(f"a:has-text('{run_id}')", timeout=60_000)
        page.screenshot(path=str(screenshots / "tunings.png"))
        page.click(f"a:has-text('{run_id}')")
        table = page.locator("[data-testid=experiments] tbody tr")
        table.first.wait_for(timeout=60_000)
        assert table.count() == len(experiments)
        page.wait_for_function(
            "ids => ids.every(id => globalThis.mlwfCharts && globalThis.mlwfCharts.has(id))",
            arg=["history", "parallel", "curves", "slice-quality"],
            timeout=60_000,
        )
        drawn = page.evaluate(
            """() => Object.fromEntries([...globalThis.mlwfCharts].map(([id, chart]) =>
                [id, chart.getOption().series.map(s => ({name: s.name, type: s.type, data: s.data}))]))"""
        )
        page.screenshot(path=str(screenshots / "tuning.png"))
        # Dark mode (Airflow follows the system's until the user picks one): every chart
        # switches to ECharts' dark theme in place, keeping its data.
        page.emulate_media(color_scheme="dark")
        page.wait_for_function("() => document.documentElement.classList.contains('dark')")
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid^=chart-]')]
                .every(c => c.dataset.theme === 'dark')"""
        )
        assert page.evaluate(
            "() => globalThis.mlwfCharts.get('history').getOption().series.length"
        ) == len(drawn["history"])
        page.screenshot(path=str(screenshots / "tuning-dark.png"))
        page.emulate_media(color_scheme="light")
    # Metric per experiment: a point per measured experiment, at its index and value.
    points = sorted(
        tuple(p) for s in drawn["history"] if s["name"] != "best so far" for p in s["data"]
    )
    assert points == sorted((e["index"], e["metrics"]["score"]) for e in measured)
    best_line = next(s for s in drawn["history"] if s["name"] == "best so far")["data"]
    assert best_line[-1][1] == detail["best_value"]
    # Parallel coordinates: a line per measured experiment, ending in its metric.
    lines = drawn["parallel"][0]["data"]
    assert sorted(line[-1] for line in lines) == sorted(e["metrics"]["score"] for e in measured)
    # Intermediate curves: each reporting experiment's curve, point by point, in the completed
    # or the pruned line series ("-" is the gap between two curves); a marker per pruned one.
    drawn_curves: dict[str, dict[int, list[list[float]]]] = {}
    curve_series = [s for s in drawn["curves"] if s["type"] == "line"]
    assert [s["name"] for s in curve_series] == ["completed", "pruned"]
    for series in curve_series:
        for point in series["data"]:
            if point != "-":
                step, value, index = point
                drawn_curves.setdefault(series["name"], {}).setdefault(index, []).append(
                    [step, value]
                )
    assert drawn_curves.get("pruned", {}) == {e["index"]: e["intermediate"] for e in pruned}
    assert drawn_curves.get("completed", {}) == {
        e["index"]: e["intermediate"] for e in curves if e["state"] != "pruned"
    }
    (markers,) = [s for s in drawn["curves"] if s["type"] == "scatter"]
    assert markers["name"] == "pruned" and sorted(markers["data"]) == sorted(
        [*e["intermediate"][-1], e["index"]] for e in pruned
    )
    # One slice per hyperparameter.
    assert {k for k in drawn if k.startswith("slice-")} == {
        f"slice-{h['name']}" for h in detail["hyperparameters"]
    }
