"""tuning_overhead: a tuning DAG's wall time vs the ideal time of its experiments, per method.

An EmbeddedInstance (LocalExecutor, parallelism 8, SQLite, as ``mlwf up`` runs) parses
``dags/``: ``noop_experiment`` (one task that pushes ``workflow_result``) and one tuning per
method, ``tuning_overhead_<random|tpe|gp>``: 16 experiments of the same no-op constructor,
parallelism 4, on the tuner's own experiment DAG. Random is planned in one round; TPE and GP
plan a batch of 4 per round on every result so far (4 rounds, each a barrier), all in the
tuning DAG's one task (the default layout).

The ideal is the same for every method: 16 experiments 4 at a time are 4 waves, and a wave can
at best take one no-op run's latency. So each round pairs, per method:

* **baseline:** 4 no-op runs one after another (REST trigger → success), their latencies
  summed: "4 x one no-op run's latency", measured beside the candidate;
* **candidate:** one tuning run of that method, REST trigger → success.

The two go in ABBA order (``abba``), the methods' order rotates from round to round, and the
rounds are spread over ``INSTANCES`` fresh instances (``ROUNDS`` each): a no-op run's latency
moved by ~0.4 s from one fresh instance to the next, and a pair stays within one instance.
Ratio per method: the median of the per-round ratios candidate / baseline with a 95 % bootstrap
interval; target ≤ 1.3 for each (issue 15).

Every timed run starts after a random 0-1 s pause (seeded), so that no measurement is locked to
one phase of the scheduler's loop. For information, once per instance, two floors without any
tuner: the 16 no-op runs triggered at once into a DAG with ``max_active_runs`` 4 (what random's
single round amounts to) and 4 waves of 4 runs triggered by the client, each wave after the
last ended (what a batch method's rounds amount to).

Sanity: every tuning must succeed with 16 succeeded experiments (its XCom ``tuning_result``).
``MLWF_BENCH_TUNING_INSTANCES`` and ``MLWF_BENCH_TUNING_ROUNDS`` shrink a trial run.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlwf_testsupport import AirflowApi
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result

DAGS = Path(__file__).parent / "dags"
METHODS = ("random", "tpe", "gp")
INSTANCES = int(os.environ.get("MLWF_BENCH_TUNING_INSTANCES", "2"))
ROUNDS = int(os.environ.get("MLWF_BENCH_TUNING_ROUNDS", "4"))  # per instance; 4 = one ABBA cycle
EXPERIMENTS, PARALLELISM = 16, 4
WAVES = EXPERIMENTS // PARALLELISM
TARGET = 1.3


class Api:
    """Trigger runs and time them to success through the REST API."""

    def __init__(self, url: str, token: str) -> None:
        #: The REST client of the integration tests: waiting for a DAG and unpausing it.
        self.airflow = AirflowApi(url, token, timeout=30)
        self.client = self.airflow.client

    def ready(self, dag_id: str) -> None:
        """Wait until the DAG is parsed (up to 180 s), then unpause it."""
        self.airflow.unpause(dag_id, timeout=180)

    def _trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        response = self.client.post(
            f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def _wait(self, dag_id: str, run_ids: set[str], start: float) -> float:
        pending = set(run_ids)
        while pending:
            for run_id in list(pending):
                state = self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
                if state == "failed" or time.monotonic() - start > 900:
                    raise RuntimeError(f"run {run_id} of {dag_id} ended {state}")
                if state == "success":
                    pending.discard(run_id)
            if pending:
                time.sleep(0.2)
        return time.monotonic() - start

    def timed_run(self, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[float, str]:
        """Trigger one run; return the seconds until it succeeded, and its id."""
        _dephase()
        start = time.monotonic()
        run_id = self._trigger(dag_id, conf)
        return self._wait(dag_id, {run_id}, start), run_id

    def timed_burst(self, dag_id: str, n: int) -> float:
        """Trigger ``n`` runs at once; return the seconds until the last has succeeded."""
        _dephase()
        start = time.monotonic()
        return self._wait(dag_id, {self._trigger(dag_id) for _ in range(n)}, start)

    def timed_waves(self, dag_id: str, waves: int, per_wave: int) -> float:
        """``waves`` times: trigger ``per_wave`` runs at once, wait for all; the total seconds."""
        _dephase()
        start = time.monotonic()
        for _ in range(waves):
            self._wait(dag_id, {self._trigger(dag_id) for _ in range(per_wave)}, start)
        return time.monotonic() - start

    def succeeded_experiments(self, dag_id: str, run_id: str) -> int:
        result = self.airflow.xcom(dag_id, run_id, "report", "tuning_result")
        return int(result["counts"]["succeeded"])


_JITTER = random.Random(20261125)


def _dephase() -> None:
    """Sleep a random 0-1 s first: the scheduler loops about once a second, and runs started
    at a fixed rhythm would all land at the same point of its loop (seen here: a no-op run took
    either ~2.0 s or ~3.0 s, depending on that phase alone)."""
    time.sleep(_JITTER.uniform(0.0, 1.0))


def measure_one_instance(orders: list[tuple[str, str]], first_round: int) -> dict[str, Any]:
    """Start a fresh instance and measure ``len(orders)`` rounds in it, then the floors."""
    from mlwf_instance import EmbeddedInstance
    from mlwf_testsupport import free_port

    samples: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(DAGS, work / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        instance = EmbeddedInstance(
            work / "home",
            dags_folder=work / "dags",
            port=free_port(),
            parallelism=8,
            extra_config={"mlwf_tuning": {"store_url": f"sqlite:///{work}/tuning.db"}},
            dag_refresh_interval=5,
        )
        with instance:
            api = Api(instance.url, instance.api_token())
            tunings = {m: f"tuning_overhead_{m}" for m in METHODS}
            for dag_id in ("noop_experiment", "noop_paced", *tunings.values()):
                api.ready(dag_id)
            # Warm-up: a no-op run and one tuning of each method (imports, first parses).
            api.timed_run("noop_experiment")
            for dag_id in tunings.values():
                api.timed_run(dag_id)

            def baseline() -> float:
                return sum(api.timed_run("noop_experiment", {"x": 0.1})[0] for _ in range(WAVES))

            def candidate(method: str) -> float:
                seconds, run_id = api.timed_run(tunings[method])
                succeeded = api.succeeded_experiments(tunings[method], run_id)
                if succeeded != EXPERIMENTS:
                    raise RuntimeError(
                        f"{method} tuning {run_id}: {succeeded} of {EXPERIMENTS} experiments succeeded"
                    )
                return seconds

            for offset, order in enumerate(orders):
                number = first_round + offset
                methods = METHODS[number % 3 :] + METHODS[: number % 3]
                samples.setdefault("method_order", []).append(list(methods))
                samples.setdefault("instance", []).append(first_round // ROUNDS)
                for method in methods:
                    for side in order:
                        value = candidate(method) if side == "candidate" else baseline()
                        samples.setdefault(f"{method}_{side}_s", []).append(value)
            samples["floor_queue_s"] = [api.timed_burst("noop_paced", EXPERIMENTS)]
            samples["floor_waves_s"] = [api.timed_waves("noop_experiment", WAVES, PARALLELISM)]
    return samples


def main() -> None:
    started_at = time.monotonic()
    env_before = environment("tuning_overhead")
    orders = abba(INSTANCES * ROUNDS)
    samples: dict[str, list[Any]] = {}
    for number in range(INSTANCES):
        chunk = orders[number * ROUNDS : (number + 1) * ROUNDS]
        for key, values in measure_one_instance(chunk, number * ROUNDS).items():
            samples.setdefault(key, []).extend(values)
    estimates: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {}
    for method in METHODS:
        pair = paired_ratio(samples[f"{method}_candidate_s"], samples[f"{method}_baseline_s"])
        ratios[method] = pair.pop("ratios")
        estimates[f"ratio_{method}"] = pair
        estimates[f"{method}_candidate_s"] = estimate(samples[f"{method}_candidate_s"])
        estimates[f"{method}_baseline_s"] = estimate(samples[f"{method}_baseline_s"])
    baselines = [b for m in METHODS for b in samples[f"{m}_baseline_s"]]
    for floor in ("floor_queue_s", "floor_waves_s"):
        if len(samples[floor]) >= 2:
            estimates[floor] = estimate(samples[floor])

    def verdict(key: str) -> str:
        low, high = estimates[key]["ci95"]
        return "met" if high <= TARGET else "missed" if low > TARGET else "not shown"

    parts = [
        f"{m} {estimates[f'ratio_{m}']['value']:.2f}x "
        f"(95% CI {estimates[f'ratio_{m}']['ci95'][0]:.2f}-{estimates[f'ratio_{m}']['ci95'][1]:.2f}: "
        f"{verdict(f'ratio_{m}')}; {estimates[f'{m}_candidate_s']['value']:.1f} s)"
        for m in METHODS
    ]
    write_result(
        "tuning_overhead",
        description=(
            f"wall time of a tuning DAG ({EXPERIMENTS} experiments of a one-task no-op "
            f"constructor, parallelism {PARALLELISM}, on its own experiment DAG; LocalExecutor, "
            "parallelism 8, SQLite) from REST trigger to success, per method (random: one "
            "round; TPE and GP: a round per batch of 4; one task), vs 4 no-op DAG runs one after another "
            "(REST trigger to success, latencies summed: 4 waves at one run's latency each); "
            f"paired ABBA rounds, {ROUNDS} in each of {INSTANCES} fresh instances, methods' order "
            "rotating, after a warm-up"
        ),
        estimates=estimates,
        headline="ratio_tpe",
        meaning=(
            "tuning wall time / (4 x one no-op run's latency), median of per-round ratios; lower "
            "is better (target <= 1.3 for random, TPE and GP)"
        ),
        samples={
            **samples,
            "ratios": ratios,
            "order": [list(o) for o in orders],
        },
        details={
            "experiments": EXPERIMENTS,
            "parallelism": PARALLELISM,
            "instances": INSTANCES,
            "rounds_per_instance": ROUNDS,
            "executor": "LocalExecutor (parallelism 8), SQLite",
            "one_noop_run_s_median": estimate([b / WAVES for b in baselines])["value"],
            "floors": (
                "no tuner, once per instance: floor_queue_s = 16 no-op runs triggered at once "
                "into a DAG with max_active_runs 4; floor_waves_s = 4 waves of 4 runs, each "
                "triggered by the client after the last ended"
            ),
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"tuning_overhead: {EXPERIMENTS} no-op experiments x{PARALLELISM} vs 4 no-op runs in "
            f"a row (target <= {TARGET}): " + "; ".join(parts)
        ),
    )


if __name__ == "__main__":
    main()
