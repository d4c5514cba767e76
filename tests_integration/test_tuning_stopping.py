"""Early stopping inside DAG experiments, on a real Airflow instance (LocalExecutor).

The DAG folder (``dags_tuning_stopping/``) holds two experiment DAGs and a grid tuning with
median stopping over each: ``stopping_experiments``, whose ``train`` task reports a learning
curve with ``report_intermediate`` (8 curve qualities, half of them clearly worse), and
``stopping_epoch_experiments``, a ``TrainEvaluateWorkflow`` whose trainer child process reports
its accuracy per epoch. Both tunings start at once; the store is a SQLite file the test reads.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import assert_no_leftover_processes, free_port
from mlwf_tuning import ExperimentState, SqlExperimentStore

DAGS = Path(__file__).parent / "dags_tuning_stopping"
EXPERIMENTS = "stopping_experiments"
TUNING = "tune_stopping"
EPOCH_EXPERIMENTS = "stopping_epoch_experiments"
EPOCH_TUNING = "tune_epochs"
EPOCHS = 5  # as in dags_tuning_stopping/epoch_trainer.py
STEPS = 6  # as in dags_tuning_stopping/stopping_dags.py
QUALITIES = [0.1, 0.15, 0.2, 0.25, 0.8, 0.85, 0.9, 0.95]
T = TypeVar("T")


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Api:
    """A small authenticated client of Airflow's REST API v2."""

    def __init__(self, instance: EmbeddedInstance) -> None:
        self.client = httpx.Client(
            base_url=f"{instance.url}/api/v2",
            headers={"Authorization": f"Bearer {instance.api_token()}"},
            timeout=60,
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def unpause(self, dag_id: str) -> None:
        poll(
            lambda: True if self.client.get(f"/dags/{dag_id}").status_code == 200 else None,
            180,
            f"DAG {dag_id}",
        )
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str) -> str:
        self.unpause(dag_id)
        response = self.client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 150) -> str:
        def finished() -> str | None:
            state = str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
            return state if state in ("success", "failed") else None

        return poll(finished, timeout, f"run {run_id} of {dag_id} to finish", interval=2.0)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        return self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        )["value"]

    def experiment_runs(
        self, dag_id: str, tuning_run_id: str, param: str
    ) -> dict[float, dict[str, Any]]:
        """Return the experiment runs of a tuning run by the value of ``param`` in their conf."""
        runs = self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]
        safe = "".join(c if c.isalnum() or c in "_.~:+-" else "_" for c in tuning_run_id)
        return {r["conf"][param]: r for r in runs if r["dag_run_id"].endswith(safe)}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInstance]:
    home = tmp_path_factory.mktemp("tuning-stopping-instance")
    dags = home / "dags"
    shutil.copytree(DAGS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    inst = EmbeddedInstance(
        home,
        dags_folder=dags,
        port=free_port(),
        parallelism=6,
        extra_config={"mlwf_tuning": {"store_url": f"sqlite:///{home}/tuning.db"}},
        dag_refresh_interval=5,
    )
    with inst:
        yield inst
    assert_no_leftover_processes(str(home))


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Api:
    return Api(instance)


@pytest.fixture(scope="module")
def tunings(api: Api) -> dict[str, str]:
    """Start both tunings at once (they share the instance's slots); return their run ids."""
    api.unpause(EXPERIMENTS)
    api.unpause(EPOCH_EXPERIMENTS)
    return {TUNING: api.trigger(TUNING), EPOCH_TUNING: api.trigger(EPOCH_TUNING)}


@pytest.fixture(scope="module")
def store(instance: EmbeddedInstance) -> SqlExperimentStore:
    return SqlExperimentStore(f"sqlite:///{instance.home.root}/tuning.db")


def test_median_stopping_prunes_the_bad_experiments_early(
    api: Api, tunings: dict[str, str], store: SqlExperimentStore
) -> None:
    """A grid of 8 curves, half clearly worse: some are pruned mid-run with their curve, the best succeeds, the tuning counts them."""
    steps, qualities = STEPS, QUALITIES
    run_id = tunings[TUNING]
    assert api.wait_run(TUNING, run_id) == "success"
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
    runs = api.experiment_runs(EXPERIMENTS, run_id, "quality")
    assert len(runs) == len(qualities)
    for quality in pruned:
        run = runs[quality]
        assert run["state"] == "success"
        states = api.task_states(EXPERIMENTS, run["dag_run_id"])
        assert states == {"train": "skipped", "workflow_result": "skipped"}

    result = api.xcom(TUNING, run_id, "report", "tuning_result")
    assert result["counts"]["pruned"] == len(pruned)
    assert result["counts"]["succeeded"] == len(succeeded)
    assert result["counts"]["failed"] == 0
    assert result["best_params"] == {"quality": max(qualities)}  # the best is never below a median


def test_train_evaluate_workflow_prunes_a_training_by_its_epochs(
    api: Api, tunings: dict[str, str], store: SqlExperimentStore
) -> None:
    """The trainer's per-epoch accuracy reaches the tuning; the worst C, run last, is pruned: trainer killed, task skipped."""
    run_id = tunings[EPOCH_TUNING]
    assert api.wait_run(EPOCH_TUNING, run_id) == "success"
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
    run = api.experiment_runs(EPOCH_EXPERIMENTS, run_id, "C")[0.05]
    assert run["state"] == "success"
    assert api.task_states(EPOCH_EXPERIMENTS, run["dag_run_id"]) == {
        "hyperparameters": "success",
        "train": "skipped",
        "workflow_result": "skipped",
    }
    result = api.xcom(EPOCH_TUNING, run_id, "report", "tuning_result")
    assert result["counts"]["pruned"] == 1 and result["counts"]["succeeded"] == 3
