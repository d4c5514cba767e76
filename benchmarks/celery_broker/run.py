"""celery_broker: the database broker (kombu's SQLAlchemy transport on PostgreSQL) vs Redis.

Two instances run side by side for the whole benchmark, each on its own throwaway PostgreSQL
metadata database with the CeleryExecutor, mlwf's Celery configuration and ``WORKERS`` workers
of ``CONCURRENCY`` slots (``stack.py``): A, the database broker (polling every 0.1 s); B, Redis
(a key prefix of its own). Both instances idle while the other is measured, so each pays the
other's idle cost alike. Rounds alternate ABBA; each slot runs

* the ``celery_smoke`` DAG (two chained no-op tasks) on idle workers: queued → running latency
  of a task when a worker slot is free (``start_date - queued_when`` of each task instance);
* the ``celery_burst`` DAG with ``TASKS`` mapped no-op tasks at once: throughput (tasks / s from
  the first task queued to the last one ended) and each task's queued → running latency, which
  under a burst includes waiting for a free slot.

Before the first slot, each instance runs a smoke run on its fresh workers (the queued → running
latency of those first tasks is reported apart, as ``first_task_latency_s``) and a burst of
``4 x WORKERS x CONCURRENCY`` tasks, so that every pool process has run a task: a pool process's
first task costs about 0.2 s more (imports and first-use set-up in the process), once per worker
start. Without this, the idle latency depends on which pool process takes a task: Celery hands a
Redis worker's tasks to the same idle process, while on the database broker (kombu's polling
loop) any idle process takes it, so the first slots of the database arm measured mostly fresh
processes (results of 2026-12-03: 13 of its 20 first samples at 0.2-0.37 s, none later).

Ratios are database / Redis: latency (median) ≤ 1.5 and throughput ≥ 0.7 are the targets. The
paired ratio of each AB pair is reported; the 95 % interval of the latency ratio is a bootstrap
over tasks (resampled within each broker), that of the throughput ratio a bootstrap over pairs.
``MLWF_BENCH_CELERY_TASKS`` and ``MLWF_BENCH_CELERY_ROUNDS`` shrink a run on a busy machine.

``MLWF_BENCH_CELERY_IDLE_ONLY=N`` measures only the idle latency, with N smoke runs per slot
and no burst, into ``results/celery_broker_idle.json`` (minutes instead of most of an hour:
for a change that can only move the idle latency, such as the PostgreSQL wake-up).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from stack import CONCURRENCY, ROOT, WORKERS, Api, instance

RESULT = ROOT / "benchmarks" / "results" / "celery_broker.json"
TASKS = int(os.environ.get("MLWF_BENCH_CELERY_TASKS", "200"))
ROUNDS = int(os.environ.get("MLWF_BENCH_CELERY_ROUNDS", "1"))  # one round = ABBA
REDIS = "redis://127.0.0.1:6379/0"
LATENCY_TARGET = 1.5
THROUGHPUT_TARGET = 0.7
BOOTSTRAP = 5000
IDLE_ONLY = int(os.environ.get("MLWF_BENCH_CELERY_IDLE_ONLY", "0"))


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def latencies(tis: list[dict[str, Any]]) -> list[float]:
    return [_ts(t["start_date"]) - _ts(t["queued_when"]) for t in tis]


def measure(api: Api) -> dict[str, Any]:
    """One slot: a smoke run on idle workers, then a burst of TASKS no-op tasks."""
    run_id = api.run("celery_smoke", {})
    idle = latencies(api.task_instances("celery_smoke", run_id))
    markers = Path(tempfile.mkdtemp(prefix="mlwf-bench-burst-"))
    try:
        run_id = api.run("celery_burst", {"marker_dir": str(markers), "n": TASKS})
        executions = len((markers / "log").read_text().splitlines())
    finally:
        shutil.rmtree(markers, ignore_errors=True)
    tis = [t for t in api.task_instances("celery_burst", run_id) if t["task_id"] == "touch"]
    span = max(_ts(t["end_date"]) for t in tis) - min(_ts(t["queued_when"]) for t in tis)
    return {
        "idle_latency_s": idle,
        "burst_latency_s": latencies(tis),
        "burst_span_s": span,
        "throughput_tasks_per_s": len(tis) / span,
        "executions": executions,
    }


def bootstrap_median_ratio(a: list[float], b: list[float], rng: random.Random) -> list[float]:
    ratios = sorted(
        statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b)))
        for _ in range(BOOTSTRAP)
    )
    return [ratios[int(0.025 * BOOTSTRAP)], ratios[int(0.975 * BOOTSTRAP) - 1]]


def bootstrap_geomean(values: list[float], rng: random.Random) -> list[float]:
    logs = [math.log(v) for v in values]
    means = sorted(
        math.exp(statistics.fmean(rng.choices(logs, k=len(logs)))) for _ in range(BOOTSTRAP)
    )
    return [means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]]


def warm_up(api: Api) -> list[float]:
    """Run a first task in every pool process of ``api``'s workers; return the first tasks' latencies."""
    api.ready("celery_smoke")
    api.ready("celery_burst")
    first = latencies(api.task_instances("celery_smoke", api.run("celery_smoke", {})))
    markers = Path(tempfile.mkdtemp(prefix="mlwf-bench-warm-"))
    try:
        api.run("celery_burst", {"marker_dir": str(markers), "n": 4 * WORKERS * CONCURRENCY})
    finally:
        shutil.rmtree(markers, ignore_errors=True)
    return first


def _start_both(stack: ExitStack, prefix: str) -> dict[str, Api]:
    """Start the database-broker and the Redis instance, side by side until ``stack`` closes."""
    return {
        "database": Api(stack.enter_context(instance("database", hint="bench_dbbroker"))),
        "redis": Api(stack.enter_context(instance(REDIS, hint="bench_redis", redis_prefix=prefix))),
    }


def measure_idle(api: Api) -> dict[str, Any]:
    """One idle-only slot: IDLE_ONLY smoke runs on idle workers, a second apart."""
    idle: list[float] = []
    for _ in range(IDLE_ONLY):
        idle += latencies(api.task_instances("celery_smoke", api.run("celery_smoke", {})))
        time.sleep(1)
    return {"idle_latency_s": idle}


def main_idle_only() -> None:
    rng = random.Random(11)
    prefix = f"mlwf-bench-{uuid.uuid4().hex[:8]}:"
    started = time.monotonic()
    slots: dict[str, list[dict[str, Any]]] = {"database": [], "redis": []}
    with ExitStack() as stack:
        apis = _start_both(stack, prefix)
        first = {arm: warm_up(api) for arm, api in apis.items()}
        for _ in range(ROUNDS):
            for arm in ("database", "redis", "redis", "database"):
                slots[arm].append(measure_idle(apis[arm]))
    _clean_redis(prefix)
    idle = {arm: [x for slot in slots[arm] for x in slot["idle_latency_s"]] for arm in slots}
    ratio = statistics.median(idle["database"]) / statistics.median(idle["redis"])
    result = {
        "benchmark": "celery_broker_idle",
        "description": (
            f"CeleryExecutor, {WORKERS} workers x {CONCURRENCY} slots, PostgreSQL metadata DB: "
            "queued->running latency of the tasks of two-task smoke runs on idle workers whose "
            "pool processes have all run a task (first tasks of fresh pool processes apart), "
            f"database broker (0.1 s polling, NOTIFY wake-up) vs Redis; {IDLE_ONLY} runs per "
            f"slot, ABBA x {ROUNDS}, both instances up throughout"
        ),
        "measurements": {
            "rounds_abba": ROUNDS,
            "runs_per_slot": IDLE_ONLY,
            "statistic": "median",
            **{f"{arm}_idle_latency_median_s": statistics.median(idle[arm]) for arm in idle},
            **{f"{arm}_idle_latency_samples": len(idle[arm]) for arm in idle},
            **{f"{arm}_idle_latency_s": idle[arm] for arm in idle},
            **{f"{arm}_first_task_latency_s": first[arm] for arm in first},
            "idle_latency_ratio": ratio,
            "idle_latency_ratio_ci95": bootstrap_median_ratio(idle["database"], idle["redis"], rng),
            "latency_target": LATENCY_TARGET,
            "latency_target_met": ratio <= LATENCY_TARGET,
            "wall_s": time.monotonic() - started,
            "load_average_at_end": os.getloadavg(),
        },
        "ratio": ratio,
        "ratio_meaning": "database-broker idle latency / Redis idle latency (median); lower is "
        "better (target <= 1.5)",
        "environment": {
            "python": platform.python_version(),
            "apache-airflow": version("apache-airflow"),
            "celery": version("celery"),
            "kombu": version("kombu"),
            "mlwf-instance": version("mlwf-instance"),
            "cpus": os.cpu_count(),
        },
    }
    (RESULT.parent / "celery_broker_idle.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"celery_broker (idle only): database broker vs Redis, {len(idle['database'])} tasks "
        f"each: idle latency {ratio:.2f}x (target <= 1.5)"
    )


def main() -> None:
    if IDLE_ONLY:
        main_idle_only()
        return
    rng = random.Random(11)
    prefix = f"mlwf-bench-{uuid.uuid4().hex[:8]}:"
    started = time.monotonic()
    slots: dict[str, list[dict[str, Any]]] = {"database": [], "redis": []}
    with ExitStack() as stack:
        apis = _start_both(stack, prefix)
        first = {arm: warm_up(api) for arm, api in apis.items()}
        for _ in range(ROUNDS):
            for arm in ("database", "redis", "redis", "database"):
                slots[arm].append(measure(apis[arm]))
    _clean_redis(prefix)
    pairs = list(zip(slots["database"], slots["redis"], strict=True))
    tput_ratios = [a["throughput_tasks_per_s"] / b["throughput_tasks_per_s"] for a, b in pairs]

    def pooled(arm: str, key: str) -> list[float]:
        return [x for slot in slots[arm] for x in slot[key]]

    idle = {arm: pooled(arm, "idle_latency_s") for arm in slots}
    burst = {arm: pooled(arm, "burst_latency_s") for arm in slots}
    idle_ratio = statistics.median(idle["database"]) / statistics.median(idle["redis"])
    burst_ratio = statistics.median(burst["database"]) / statistics.median(burst["redis"])
    tput_ratio = math.exp(statistics.fmean(math.log(r) for r in tput_ratios))
    result = {
        "benchmark": "celery_broker",
        "description": (
            f"CeleryExecutor, {WORKERS} workers x {CONCURRENCY} slots, PostgreSQL metadata DB: "
            f"database broker (kombu SQLAlchemy transport, 0.1 s polling) vs Redis broker; "
            f"queued->running latency per task (idle smoke runs and {TASKS}-task bursts) and "
            f"burst throughput, after every pool process has run a task (first tasks apart); "
            f"ABBA x {ROUNDS}, both instances up throughout"
        ),
        "measurements": {
            "tasks_per_burst": TASKS,
            "rounds_abba": ROUNDS,
            "statistic": "median",
            **{
                f"{arm}_{what}": value
                for arm in slots
                for what, value in {
                    "idle_latency_median_s": statistics.median(idle[arm]),
                    "idle_latency_samples": len(idle[arm]),
                    "burst_latency_median_s": statistics.median(burst[arm]),
                    "burst_latency_p95_s": sorted(burst[arm])[int(0.95 * len(burst[arm])) - 1],
                    "throughput_tasks_per_s": [s["throughput_tasks_per_s"] for s in slots[arm]],
                    "burst_span_s": [s["burst_span_s"] for s in slots[arm]],
                    "executions_per_burst": [s["executions"] for s in slots[arm]],
                    "first_task_latency_s": first[arm],
                }.items()
            },
            "idle_latency_ratio": idle_ratio,
            "idle_latency_ratio_ci95": bootstrap_median_ratio(idle["database"], idle["redis"], rng),
            "burst_latency_ratio": burst_ratio,
            "burst_latency_ratio_ci95": bootstrap_median_ratio(
                burst["database"], burst["redis"], rng
            ),
            "throughput_ratio_pairs": tput_ratios,
            "throughput_ratio_ci95": bootstrap_geomean(tput_ratios, rng),
            "latency_target": LATENCY_TARGET,
            "throughput_target": THROUGHPUT_TARGET,
            "latency_target_met": idle_ratio <= LATENCY_TARGET and burst_ratio <= LATENCY_TARGET,
            "throughput_target_met": tput_ratio >= THROUGHPUT_TARGET,
            "wall_s": time.monotonic() - started,
            "load_average_at_end": os.getloadavg(),
        },
        "ratio": tput_ratio,
        "ratio_meaning": (
            "database-broker throughput / Redis throughput (geometric mean of AB pairs); higher is "
            "better (target >= 0.7); latency ratios in measurements (target <= 1.5)"
        ),
        "environment": {
            "python": platform.python_version(),
            "apache-airflow": version("apache-airflow"),
            "celery": version("celery"),
            "kombu": version("kombu"),
            "mlwf-instance": version("mlwf-instance"),
            "cpus": os.cpu_count(),
        },
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"celery_broker: database broker vs Redis, {TASKS} tasks x {2 * ROUNDS} bursts each: "
        f"idle latency {idle_ratio:.2f}x, burst latency {burst_ratio:.2f}x (target <= 1.5), "
        f"throughput {tput_ratio:.2f}x (target >= 0.7)"
    )


def _clean_redis(prefix: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


if __name__ == "__main__":
    main()
