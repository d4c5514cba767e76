"""celery_broker: the database broker (kombu's SQLAlchemy transport on PostgreSQL) vs Redis.

Two instances run side by side for the whole benchmark, each on its own throwaway PostgreSQL
metadata database with the CeleryExecutor, mlwf's Celery configuration and ``WORKERS`` workers
of ``CONCURRENCY`` slots (``stack.py``): the candidate, the database broker (polling every
0.1 s, NOTIFY wake-up), and the baseline, Redis (a key prefix of its own). Each idles while the
other is measured, so each pays the other's idle cost alike. ``ROUNDS`` rounds, each a pair of
slots in ABBA order (``mlwf_testsupport.benchmark.abba``); a slot runs

* ``IDLE_RUNS`` runs of the ``celery_smoke`` DAG (two chained no-op tasks), a second apart, on
  idle workers: the queued → running latency of each task when a worker slot is free
  (``start_date - queued_when`` of each task instance); the slot's median counts;
* the ``celery_burst`` DAG with ``TASKS`` mapped no-op tasks at once: throughput (tasks / s from
  the first task queued to the last one ended) and each task's queued → running latency (the
  slot's median), which under a burst includes waiting for a free slot.

Before the first round, each instance runs a smoke run on its fresh workers (the queued →
running latency of those first tasks is reported apart, as ``first_task_latency_s``) and a burst
of ``4 x WORKERS x CONCURRENCY`` tasks, so that every pool process has run a task: a pool
process's first task costs about 0.2 s more (imports and first-use set-up in the process), once
per worker start. Without this, the idle latency depends on which pool process takes a task:
Celery hands a Redis worker's tasks to the same idle process, while on the database broker
(kombu's polling loop) any idle process takes it (results of 2026-12-03: 13 of the database
arm's 20 first samples at 0.2-0.37 s, none later).

Estimates are paired per round (median of the per-round ratios database / Redis, 95 %
bootstrap interval): ``idle_latency_ratio`` ≤ 1.5 and ``throughput_ratio`` ≥ 0.7 are the
targets (issue 11); ``burst_latency_ratio`` is reported beside them. Sanity: every burst task
ran exactly once (its marker file). ``MLWF_BENCH_CELERY_ROUNDS``, ``MLWF_BENCH_CELERY_TASKS``
and ``MLWF_BENCH_CELERY_IDLE_RUNS`` shrink a trial run.
"""

from __future__ import annotations

import os
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
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result
from stack import CONCURRENCY, WORKERS, Api, instance

TASKS = int(os.environ.get("MLWF_BENCH_CELERY_TASKS", "48"))
ROUNDS = int(os.environ.get("MLWF_BENCH_CELERY_ROUNDS", "4"))
IDLE_RUNS = int(os.environ.get("MLWF_BENCH_CELERY_IDLE_RUNS", "5"))
REDIS = "redis://127.0.0.1:6379/0"
LATENCY_TARGET = 1.5
THROUGHPUT_TARGET = 0.7
ARMS = {"candidate": "database", "baseline": "redis"}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def latencies(tis: list[dict[str, Any]]) -> list[float]:
    return [_ts(t["start_date"]) - _ts(t["queued_when"]) for t in tis]


def measure(api: Api) -> dict[str, Any]:
    """One slot: IDLE_RUNS smoke runs on idle workers, a second apart, then a burst of TASKS."""
    idle: list[float] = []
    for _ in range(IDLE_RUNS):
        idle += latencies(api.task_instances("celery_smoke", api.run("celery_smoke", {})))
        time.sleep(1)
    markers = Path(tempfile.mkdtemp(prefix="mlwf-bench-burst-"))
    try:
        run_id = api.run("celery_burst", {"marker_dir": str(markers), "n": TASKS})
        executions = len((markers / "log").read_text().splitlines())
    finally:
        shutil.rmtree(markers, ignore_errors=True)
    tis = [t for t in api.task_instances("celery_burst", run_id) if t["task_id"] == "touch"]
    if executions != TASKS or len(tis) != TASKS:
        raise RuntimeError(
            f"burst {run_id}: {len(tis)} task instances and {executions} executions, "
            f"expected {TASKS} each"
        )
    span = max(_ts(t["end_date"]) for t in tis) - min(_ts(t["queued_when"]) for t in tis)
    return {
        "idle_latency_s": idle,
        "burst_latency_s": latencies(tis),
        "burst_span_s": span,
        "throughput_tasks_per_s": len(tis) / span,
    }


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


def main() -> None:
    started = time.monotonic()
    env_before = environment("celery_broker")
    orders = abba(ROUNDS)
    prefix = f"mlwf-bench-{uuid.uuid4().hex[:8]}:"
    slots: dict[str, list[dict[str, Any]]] = {"database": [], "redis": []}
    try:
        with ExitStack() as stack:
            apis = _start_both(stack, prefix)
            first = {arm: warm_up(api) for arm, api in apis.items()}
            for order in orders:
                for side in order:
                    slots[ARMS[side]].append(measure(apis[ARMS[side]]))
    finally:
        _clean_redis(prefix)

    def per_round(arm: str, key: str) -> list[float]:
        """The slot's value of ``key``: the median of a slot's latencies, or its throughput."""
        return [
            statistics.median(slot[key]) if isinstance(slot[key], list) else slot[key]
            for slot in slots[arm]
        ]

    estimates: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {}
    for key, name in (
        ("idle_latency_s", "idle_latency_ratio"),
        ("throughput_tasks_per_s", "throughput_ratio"),
        ("burst_latency_s", "burst_latency_ratio"),
    ):
        pair = paired_ratio(per_round("database", key), per_round("redis", key))
        ratios[name] = pair.pop("ratios")
        estimates[name] = pair
        for arm in slots:
            pooled = [
                x
                for slot in slots[arm]
                for x in (slot[key] if isinstance(slot[key], list) else [slot[key]])
            ]
            estimates[f"{arm}_{key}"] = estimate(pooled)
    idle, tput = estimates["idle_latency_ratio"], estimates["throughput_ratio"]
    burst = estimates["burst_latency_ratio"]

    def verdict(value: dict[str, Any], bound: float, lower_is_better: bool) -> str:
        low, high = value["ci95"]
        if lower_is_better:
            return "met" if high <= bound else "missed" if low > bound else "not shown"
        return "met" if low >= bound else "missed" if high < bound else "not shown"

    write_result(
        "celery_broker",
        description=(
            f"CeleryExecutor, {WORKERS} workers x {CONCURRENCY} slots, PostgreSQL metadata DB: "
            "database broker (kombu SQLAlchemy transport, 0.1 s polling, NOTIFY wake-up) vs Redis "
            f"broker; per slot {IDLE_RUNS} two-task smoke runs on idle workers (queued->running "
            f"latency per task) and a {TASKS}-task burst (throughput, latency per task), after "
            f"every pool process has run a task (first tasks apart); {ROUNDS} paired rounds in "
            "ABBA order, both instances up throughout"
        ),
        estimates=estimates,
        headline="idle_latency_ratio",
        meaning=(
            "database broker / Redis, median of per-round ratios of each slot's median "
            "queued->running latency on idle workers; lower is better (target <= 1.5); "
            "throughput_ratio: database / Redis burst throughput, higher is better (target >= 0.7)"
        ),
        samples={
            **{
                f"{arm}_{key}": [slot[key] for slot in slots[arm]]
                for arm in slots
                for key in slots[arm][0]
            },
            "ratios": ratios,
            "order": [[ARMS[side] for side in order] for order in orders],
        },
        details={
            "tasks_per_burst": TASKS,
            "idle_runs_per_slot": IDLE_RUNS,
            "rounds": ROUNDS,
            "workers": WORKERS,
            "concurrency": CONCURRENCY,
            **{f"{arm}_first_task_latency_s": first[arm] for arm in first},
            "idle_latency_ratio_of_pooled_medians": (
                estimates["database_idle_latency_s"]["value"]
                / estimates["redis_idle_latency_s"]["value"]
            ),
            "versions": {p: version(p) for p in ("celery", "kombu", "redis")},
            "wall_s": time.monotonic() - started,
        },
        environment=env_before,
        summary=(
            f"celery_broker: database broker vs Redis, {ROUNDS} paired rounds: idle latency "
            f"{idle['value']:.2f}x (95% CI {idle['ci95'][0]:.2f}-{idle['ci95'][1]:.2f}, target "
            f"<= {LATENCY_TARGET}: {verdict(idle, LATENCY_TARGET, True)}), throughput "
            f"{tput['value']:.2f}x (95% CI {tput['ci95'][0]:.2f}-{tput['ci95'][1]:.2f}, target "
            f">= {THROUGHPUT_TARGET}: {verdict(tput, THROUGHPUT_TARGET, False)}), burst latency "
            f"{burst['value']:.2f}x (95% CI {burst['ci95'][0]:.2f}-{burst['ci95'][1]:.2f})"
        ),
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
