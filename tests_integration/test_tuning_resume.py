"""A tuning run whose scheduler is killed mid-way loses and repeats no experiment once resumed.

One instance serves the module (api-server, scheduler, dag-processor, triggerer; LocalExecutor,
so the task processes are descendants of the scheduler). Its DAG folder (``dags_tuning_resume/``)
holds a toy experiment DAG whose only task sleeps a few seconds before pushing
``workflow_result``, and a Bayesian (TPE) tuning of 6 experiments, 2 at a time, over it. The
tuning records into the DEFAULT experiment store (no ``[mlwf_tuning] store_url``): with
LocalExecutor, the SQLite file ``$AIRFLOW_HOME/mlwf_tuning.db``, which the test reads directly.

The test relies on public behaviour only: the tuning run's state, the experiment DAG's runs (run
ids ``exp<NNNN>__<tuning dag>__<tuning run>``) through the REST API, the store's records and the
``tuning_result`` XCom, never on the tuning DAG's task layout.

What a kill does (measured): the killed scheduler's task instances stay "running" until a
restarted scheduler adopts them (see RECOVERY_CONFIG), then LocalExecutor resets them and they
run again as a new try of the same task instance; deferred tasks wait in the triggerer
meanwhile. The tuning run itself does not fail. The test then also clears the finished tuning
run, which must re-run no experiment.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psutil
import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi, poll
from mlwf_tuning import ExperimentRecord, ExperimentState, SqlExperimentStore

DAGS = Path(__file__).parent / "dags_tuning_resume"
TUNING = "tune_resume"
EXPERIMENTS = f"{TUNING}__experiments"  # the tuner's own experiment DAG
N_EXPERIMENTS = 6
StartInstance = Callable[..., AbstractContextManager[EmbeddedInstance]]
EXPERIMENT_RUN = re.compile(r"^exp(\d{4})__")

# Airflow's recovery from a dead scheduler, shortened for the test. A restarted scheduler takes
# over ("adopts", for LocalExecutor: resets to be scheduled again) the queued and running task
# instances of a scheduler job only once that job counts as dead, i.e. its last heartbeat is
# older than scheduler_health_check_threshold (30 s); it checks at start-up and then every
# orphaned_tasks_check_interval (300 s). With the defaults, a scheduler restarted at once leaves
# the killed tasks "running" for about five minutes.
RECOVERY_CONFIG = {
    "scheduler": {
        "scheduler_health_check_threshold": "15",
        "orphaned_tasks_check_interval": "5",
    }
}


def failures(api: AirflowApi, dag_id: str, run_id: str) -> str:
    """Describe the failed task instances of a run, with the end of each one's log."""
    out = []
    for ti in api.task_instances(dag_id, run_id):
        if ti["state"] not in ("failed", "upstream_failed"):
            continue
        out.append(f"{ti['task_id']}[{ti['map_index']}] {ti['state']}")
        if ti["state"] == "failed" and ti["try_number"]:
            path = (
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
                f"/logs/{ti['try_number']}"
            )
            params: dict[str, Any] = {"full_content": True}
            if ti["map_index"] >= 0:
                params["map_index"] = ti["map_index"]
            # A log the server cannot show is no reason to hide the failures themselves.
            response = api.client.get(path, params=params)
            if response.status_code == 200:
                out.extend(f"    {line}" for line in _errors_of(response.json()))
    return "\n".join(out) or "(no failed task instance)"


def xcom_anywhere(api: AirflowApi, dag_id: str, run_id: str, key: str) -> Any:
    """Return the value of XCom ``key`` of a run, whichever task pushed it (exactly one)."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/~/xcomEntries"
    entries = api.get(path, xcom_key=key)["xcom_entries"]
    assert len(entries) == 1, f"expected one XCom {key!r} in run {run_id}, got {entries}"
    entry = entries[0]
    return api.xcom(dag_id, run_id, entry["task_id"], key, map_index=entry["map_index"])


def experiment_runs(api: AirflowApi, tuning_run_id: str) -> list[dict[str, Any]]:
    """Return the experiment DAG's runs of one tuning run (by the tuning id in their conf; run ids end with a random part)."""
    tuning_id = f"{TUNING}/{tuning_run_id}"
    return [
        r
        for r in api.runs(EXPERIMENTS, run_id_prefix="exp")
        if ((r.get("conf") or {}).get("mlwf_tuning") or {}).get("tuning_id") == tuning_id
    ]


def _errors_of(log: Any) -> list[str]:
    """Return the error lines of a structured task log (events at level error, exceptions)."""
    lines = []
    for entry in log.get("content") or []:
        if not isinstance(entry, dict) or entry.get("level") not in ("error", "critical"):
            continue
        lines.append(str(entry.get("event")))
        for detail in entry.get("error_detail") or []:
            lines.append(f"{detail.get('exc_type')}: {detail.get('exc_value')}")
    return lines or [json.dumps(log)[-1000:]]


class Timeline:
    """Timestamps of what happened, printed with every failure (and with ``-s``)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.events: list[str] = []

    def note(self, event: str) -> None:
        line = f"{time.monotonic() - self.start:6.1f} s  {event}"
        self.events.append(line)
        print(line)

    def __str__(self) -> str:
        return "timeline:\n" + "\n".join(self.events)


@pytest.fixture(scope="module")
def instance(start_instance: StartInstance) -> Iterator[EmbeddedInstance]:
    """The module's own instance: the test kills and restarts its scheduler."""
    # No [mlwf_tuning] store_url: the default store.
    with start_instance(
        "tuning-resume-instance", [DAGS], parallelism=4, extra_config=RECOVERY_CONFIG
    ) as inst:
        yield inst


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Iterator[AirflowApi]:
    with AirflowApi.for_instance(instance) as client:
        client.unpause(EXPERIMENTS)
        client.unpause(TUNING)
        yield client


def _processes(instance: EmbeddedInstance) -> list[psutil.Process]:
    """Return the live processes of the instance (its components and their descendants)."""
    found = []
    for pid in instance.pids():
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _name(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:60]
    except psutil.Error:
        return "?"


def _index(run: dict[str, Any]) -> int:
    match = EXPERIMENT_RUN.match(run["dag_run_id"])
    assert match, f"experiment run id {run['dag_run_id']!r} does not start with exp<NNNN>__"
    return int(match.group(1))


def test_killed_scheduler_mid_tuning_loses_and_repeats_no_experiment(
    instance: EmbeddedInstance, api: AirflowApi
) -> None:
    """SIGKILL of the scheduler tree mid-tuning, restart, clear: 6 experiments, each run and recorded once."""
    timeline = Timeline()
    store = SqlExperimentStore(f"sqlite:///{instance.home.airflow_home / 'mlwf_tuning.db'}")
    run_id = api.trigger(TUNING, unpause=False)
    tuning_id = f"{TUNING}/{run_id}"
    timeline.note(f"triggered {tuning_id}")

    # 1. Wait until the tuning is in its second round or later: >= 2 experiments recorded
    #    finished and another experiment run is running its (sleeping) task.
    def mid_tuning() -> tuple[list[ExperimentRecord], list[str]] | None:
        state = api.run_state(TUNING, run_id)
        assert state in ("queued", "running"), (
            f"the tuning run ended {state} before the kill; its failures:\n"
            f"{failures(api, TUNING, run_id)}\n{timeline}"
        )
        finished = [r for r in store.load(tuning_id) if r.state.finished]
        if len(finished) < 2:
            return None
        working = [
            r["dag_run_id"]
            for r in experiment_runs(api, run_id)
            if r["state"] == "running"
            and any(
                ti["state"] == "running" for ti in api.task_instances(EXPERIMENTS, r["dag_run_id"])
            )
        ]
        return (finished, working) if working else None

    before, running = poll(
        mid_tuning, 120, "2 finished experiments and a running experiment task", 0.3
    )
    timeline.note(f"{len(before)} experiments finished; running a task: {running}")

    # 2. Crash the scheduler: SIGKILL its whole tree, the LocalExecutor workers and the task
    #    processes they run included; then start it again.
    tree = _processes(instance)
    names = {p.pid: _name(p) for p in tree}
    killed = instance.kill_component("scheduler")
    timeline.note(f"killed the scheduler tree: {sorted(names.get(pid, '?') for pid in killed)}")
    assert killed, "kill_component('scheduler') killed no process"
    survivors = [p.pid for p in tree if p.pid in killed and _alive(p)]
    assert survivors == [], f"processes of the killed scheduler tree survived: {survivors}"
    instance.restart_component("scheduler")
    instance.wait_healthy(timeout=120)
    timeline.note("scheduler restarted and healthy")

    for run in running:
        tis = api.task_instances(EXPERIMENTS, run)
        timeline.note(f"{run[:7]}: {[(t['task_id'], t['state'], t['try_number']) for t in tis]}")

    # 3. Let Airflow's own recovery run (the killed task instances are reset and run again),
    #    then clear the whole tuning run through the REST API and wait for it to finish.
    first_end = api.wait_run(TUNING, run_id, timeout=150)
    timeline.note(
        f"after the restart the tuning run ended {first_end}; failures: "
        f"{failures(api, TUNING, run_id) if first_end == 'failed' else 'none'}"
    )
    recovered = store.load(tuning_id)
    response = api.client.post(
        f"/dags/{TUNING}/dagRuns/{run_id}/clear", json={"dry_run": False, "only_failed": False}
    )
    assert response.status_code == 200, f"clearing {run_id} failed: {response.text}"
    timeline.note("cleared the tuning run")
    end = api.wait_run(TUNING, run_id, timeout=120)
    timeline.note(f"the resumed tuning run ended {end}")
    assert end == "success", (
        f"the resumed tuning run ended {end}; failures:\n{failures(api, TUNING, run_id)}\n{timeline}"
    )

    tries = {}
    for run in running:
        tis = api.task_instances(EXPERIMENTS, run)
        tries[run] = max(t["try_number"] for t in tis)
        timeline.note(f"{run[:7]}: {[(t['task_id'], t['state'], t['try_number']) for t in tis]}")
    tuning_tis = api.task_instances(TUNING, run_id)
    timeline.note(
        f"tuning tasks: {[(t['task_id'], t['state'], t['try_number']) for t in tuning_tis]}"
    )

    # 4. Nothing lost: exactly 6 finished records, indices 0..5, each once.
    records = store.load(tuning_id)
    assert [r.index for r in records] == list(range(N_EXPERIMENTS)), (
        f"records {[(r.index, r.state.value) for r in records]}\n{timeline}"
    )
    assert [r.state for r in records] == [ExperimentState.SUCCEEDED] * N_EXPERIMENTS, (
        f"records {[(r.index, r.state.value, r.error) for r in records]}\n{timeline}"
    )

    # 5. Nothing repeated: one experiment DAG run per index, each successful, conf = record.
    runs = experiment_runs(api, run_id)
    per_index = Counter(_index(r) for r in runs)
    assert per_index == Counter(range(N_EXPERIMENTS)), (
        f"experiment runs per index: {dict(sorted(per_index.items()))} "
        f"(run ids {sorted(r['dag_run_id'] for r in runs)})\n{timeline}"
    )
    assert {r["dag_run_id"]: r["state"] for r in runs if r["state"] != "success"} == {}
    by_index = {r.index: r for r in records}
    for experiment in runs:
        assert experiment["conf"]["x"] == by_index[_index(experiment)].params["x"], experiment

    # The kill interrupted a running experiment task: Airflow ran it again, in the same run.
    assert any(t >= 2 for t in tries.values()), (
        f"no killed experiment task was run again (tries {tries}): the kill did not hit a "
        f"running experiment, so the scenario was not exercised\n{timeline}"
    )

    # 6. What was finished before the kill is kept as it was (params, metrics, times), and so
    #    is whatever was finished before the clear.
    for old in before:
        assert by_index[old.index] == old, f"experiment {old.index} changed after the resume"
    for old in recovered:
        if old.state.finished:
            assert by_index[old.index] == old, f"experiment {old.index} changed by the clear"

    # 7. The report names the best experiment of the records.
    result = xcom_anywhere(api, TUNING, run_id, "tuning_result")
    best = min(records, key=lambda r: r.metrics["loss"])
    assert result["best_index"] == best.index
    assert result["best_params"] == best.params
    assert result["best_value"] == pytest.approx(best.metrics["loss"])
    assert result["counts"]["succeeded"] == N_EXPERIMENTS
    timeline.note("all checks passed")
