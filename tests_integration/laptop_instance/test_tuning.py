"""mlwf-tuning on a real Airflow instance (api-server, scheduler, dag-processor, triggerer; LocalExecutor).

The package's instance (``conftest.py``) serves the module. Its DAG folder (``dags_tuning/``) holds
the experiment DAG, an instance of ``TrainEvaluateWorkflow`` on iris, and tuning DAGs over it
(random, grid with a tolerated failure, grid beyond the tolerance, Bayesian). Every experiment is
a triggered run of the experiment DAG; the store is a SQLite file the test reads directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi, poll
from mlwf_tuning import Categorical, ExperimentState, HyperparameterTuningSpec, SqlExperimentStore

EXPERIMENTS = "tuning_experiments"


def experiment_runs(
    api: AirflowApi, tuning_run_id: str, dag_id: str = EXPERIMENTS
) -> list[dict[str, Any]]:
    """Return the runs of the experiment DAG that one tuning run started (by the tuning id in their conf).

    Run ids end with a random part (issue 10 item 4), so the conf's ``mlwf_tuning.tuning_id``
    (``<tuning dag>/<tuning run>``) tells a tuning run's experiments apart.
    """
    return [
        r
        for r in api.runs(dag_id, run_id_prefix="exp")
        if str(((r.get("conf") or {}).get("mlwf_tuning") or {}).get("tuning_id", "")).endswith(
            f"/{tuning_run_id}"
        )
    ]


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Iterator[AirflowApi]:
    with AirflowApi.for_instance(instance) as client:
        client.unpause(EXPERIMENTS)
        yield client


def test_random_search_reports_the_best_parameters(
    instance: EmbeddedInstance, api: AirflowApi, store: SqlExperimentStore
) -> None:
    """A random search of 4 experiments, 2 at a time, on the tuner's own experiment DAG, reports the best C (XCom, log, notifier)."""
    run_id = api.trigger("tune_random")
    assert api.wait_run("tune_random", run_id) == "success"
    result = api.xcom("tune_random", run_id, "report", "tuning_result")
    records = store.load(f"tune_random/{run_id}")
    assert [r.state for r in records] == [ExperimentState.SUCCEEDED] * 4
    best = min(records, key=lambda r: r.metrics["log_loss"])
    assert result["best_index"] == best.index
    assert result["best_params"] == best.params
    assert result["best_value"] == pytest.approx(best.metrics["log_loss"])
    runs = experiment_runs(api, run_id, "tune_random__experiments")
    assert len(runs) == 4 and {r["state"] for r in runs} == {"success"}
    assert sorted(r["conf"]["C"] for r in runs) == sorted(r.params["C"] for r in records)
    assert {r["conf"]["mlwf_tuning"]["index"] for r in runs} == {0, 1, 2, 3}
    # The scheduler ran at most `parallelism` (2) experiments at once: the DAG's max_active_runs.
    assert api.get("/dags/tune_random__experiments/details")["max_active_runs"] == 2
    spans = sorted((r["start_date"], r["end_date"]) for r in runs)
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    log = api.task_log("tune_random", run_id, "report")
    assert "best log_loss (minimize)" in log and f"at experiment {best.index}" in log
    report = (instance.home.airflow_home / "tuning_report.txt").read_text(encoding="utf-8")
    assert report.startswith(f"best C {best.params['C']}\n")
    assert f"at experiment {best.index}" in report


def test_grid_search_tolerates_failures_up_to_the_limit(
    api: AirflowApi, store: SqlExperimentStore
) -> None:
    """A grid of 4 values of C where C=0 fails the workflow: the tuning succeeds and names the best C."""
    run_id = api.trigger("tune_grid")
    assert api.wait_run("tune_grid", run_id) == "success"
    records = {r.params["C"]: r for r in store.load(f"tune_grid/{run_id}")}
    assert sorted(records) == [0.0, 0.01, 1.0, 100.0]
    assert records[0.0].state == ExperimentState.FAILED
    assert "ended failed (failed tasks: train" in (records[0.0].error or "")
    assert all(records[c].state == ExperimentState.SUCCEEDED for c in (0.01, 1.0, 100.0))
    result = api.xcom("tune_grid", run_id, "report", "tuning_result")
    best_c = max(
        (0.01, 1.0, 100.0), key=lambda c: (records[c].metrics["accuracy"], -records[c].index)
    )
    assert result["best_params"] == {"C": best_c}
    assert result["counts"]["failed"] == 1


def test_failures_beyond_the_limit_fail_the_tuning(
    api: AirflowApi, store: SqlExperimentStore
) -> None:
    """With no failure tolerated, the failing C=0 experiment fails the tuning run with a clear error."""
    run_id = api.trigger("tune_strict")
    assert api.wait_run("tune_strict", run_id) == "failed"
    states = api.task_states("tune_strict", run_id)
    assert states[("report", -1)] == "failed"
    log = api.task_log("tune_strict", run_id, "report")
    assert "TooManyFailedExperiments" in log
    assert "1 experiments failed, but the spec tolerates 0" in log
    assert len(store.load(f"tune_strict/{run_id}")) == 2


def test_cleared_bayesian_tuning_resumes_without_repeating_or_losing(
    api: AirflowApi, store: SqlExperimentStore
) -> None:
    """Clearing a TPE tuning while its second round runs ends with exactly 4 experiments, each run once."""
    dag = "tune_tpe"
    run_id = api.trigger(dag)

    def second_round_started() -> bool:
        # The second round (of the one task, `report`, which also reports) has handed out its two.
        records = store.load(f"{dag}/{run_id}")
        finished = sum(1 for r in records if r.state.finished)
        return len(records) == 4 and finished == 2

    poll(second_round_started, 240, "the second round of tune_tpe to start")
    first_round = [r for r in store.load(f"{dag}/{run_id}") if r.state.finished]
    assert len(first_round) == 2
    api.clear_run(dag, run_id)
    assert api.wait_run(dag, run_id) == "success"
    assert api.task_instance(dag, run_id, "report")["try_number"] == 2
    records = store.load(f"{dag}/{run_id}")
    assert [r.index for r in records] == [0, 1, 2, 3]
    assert all(r.state == ExperimentState.SUCCEEDED for r in records)
    for before in first_round:  # the first round is kept as it was, not re-run
        assert records[before.index] == before
    runs = experiment_runs(api, run_id)
    assert sorted(r["dag_run_id"][:7] for r in runs) == ["exp0000", "exp0001", "exp0002", "exp0003"]
    result = api.xcom(dag, run_id, "report", "tuning_result")
    assert result["counts"]["succeeded"] == 4
    assert result["best_params"] == min(records, key=lambda r: r.metrics["log_loss"]).params


def test_tuning_created_as_a_constructor_instance_runs(
    api: AirflowApi, store: SqlExperimentStore
) -> None:
    """A tuning DAG created through the constructors API (TuningConstructor) runs its grid and reports."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"C": Categorical([0.1, 10.0])},
        metric="accuracy",
        direction="maximize",
        method="grid",
        parallelism=2,
    )
    with api.client_for("/mlwf/constructors") as constructors:
        response = constructors.post(
            "/instances",
            json={
                "instance_id": "ctor_tune",
                "constructor": "hyperparameter_tuning",
                "values": {
                    "constructor": "train_evaluate_workflow",
                    "instance_id": EXPERIMENTS,
                    "spec": spec.model_dump_json(),
                },
            },
        )
    assert response.status_code == 201, response.text
    run_id = api.trigger("ctor_tune")
    assert api.wait_run("ctor_tune", run_id) == "success"
    records = store.load(f"ctor_tune/{run_id}")
    assert sorted(r.params["C"] for r in records) == [0.1, 10.0]
    assert all(r.state == ExperimentState.SUCCEEDED for r in records)
    result = api.xcom("ctor_tune", run_id, "report", "tuning_result")
    best = max(records, key=lambda r: (r.metrics["accuracy"], -r.index))
    assert result["best_params"] == best.params


def test_tuning_over_a_paused_experiment_dag_fails_at_once_naming_it(api: AirflowApi) -> None:
    """A tuning whose experiment DAG is paused fails in its first round instead of waiting forever."""
    api.unpause("tuning_paused_experiments")  # waits until parsed
    api.pause("tuning_paused_experiments")
    run_id = api.trigger("tune_paused")
    assert api.wait_run("tune_paused", run_id, timeout=120) == "failed"
    assert api.task_states("tune_paused", run_id)[("round_0", -1)] == "failed"
    log = api.task_log("tune_paused", run_id, "round_0")
    assert "the experiment DAG 'tuning_paused_experiments' is paused" in log
    assert api.get("/dags/tuning_paused_experiments/dagRuns")["total_entries"] == 0


def test_gaussian_process_search_reports_the_best_parameters(
    api: AirflowApi, store: SqlExperimentStore
) -> None:
    """A GP search of 4 experiments, 2 at a time, succeeds with 4 succeeded records and reports the best C."""
    run_id = api.trigger("tune_gp")
    assert api.wait_run("tune_gp", run_id) == "success"
    records = store.load(f"tune_gp/{run_id}")
    assert [r.state for r in records] == [ExperimentState.SUCCEEDED] * 4
    assert all(0.001 <= r.params["C"] <= 10.0 for r in records)
    best = min(records, key=lambda r: r.metrics["log_loss"])
    result = api.xcom("tune_gp", run_id, "report", "tuning_result")
    assert result["counts"]["succeeded"] == 4
    assert result["best_index"] == best.index
    assert result["best_params"] == best.params
    assert result["best_value"] == pytest.approx(best.metrics["log_loss"])
