"""instance_footprint: memory (PSS) of the production topology vs the same on LocalExecutor.

Candidate: an instance on a throwaway PostgreSQL metadata database with the CeleryExecutor on
the database broker and 2 Celery workers of the spec's default ``celery.concurrency`` (4 slots;
``MLWF_BENCH_FOOTPRINT_CONCURRENCY`` changes it): api-server, scheduler, dag-processor,
triggerer (the api-server's process also serves task logs), workers and every process they
fork. Baseline: the same instance on the LocalExecutor with as many task slots (``[core]
parallelism`` 8, pre-forked workers). Both come from ``../celery_broker/stack.py``.

Each instance starts fresh and is measured twice: *fresh*, after one ``celery_smoke`` run (two
tasks: the workers have forked and parsed) and ``SETTLE`` s idle; *settled*, after a
``celery_burst`` run of ``BURST_PER_SLOT`` tasks per slot (every pool process has run tasks:
one that has holds about 20 MiB more than one that has not, so the fresh instance flatters a
team instance that has been working) and ``SETTLE`` s idle. A measurement sums the
proportional set size (``psutil`` ``memory_full_info().pss``) over every live process of the
instance, ``SAMPLES`` times ``INTERVAL`` s apart; the median counts. The PostgreSQL server's
own processes are shared with everything else and are not counted.

``ROUNDS`` rounds (``MLWF_BENCH_FOOTPRINT_ROUNDS``, default 3), each a candidate and a baseline
instance in ABBA order (``mlwf_testsupport.benchmark.abba``), one instance at a time. The target
is absolute (issue 11): ``celery_pss_gib``, the median over the rounds of the candidate's
settled PSS, ≤ 1.3 GiB with its whole 95 % bootstrap interval. ``ratio`` (settled candidate /
baseline, the median of the per-round ratios) and the fresh measurements are reported for
context. Sanity: the runs succeed, the burst ran every task, and a Celery instance has its
workers' pool processes.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parents[1] / "celery_broker"))
from mlwf_instance import parse_spec
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result
from stack import WORKERS, Api, instance

ROUNDS = int(os.environ.get("MLWF_BENCH_FOOTPRINT_ROUNDS", "3"))
SETTLE = 15.0
SAMPLES = 5
INTERVAL = 2.0
LIMIT_GIB = 1.3
#: Task slots per Celery worker: the spec's default unless overridden.
CONCURRENCY = int(
    os.environ.get("MLWF_BENCH_FOOTPRINT_CONCURRENCY")
    or parse_spec({"name": "default"}).celery.concurrency
)
GIB = 1024**3
#: Task slots of either instance; the burst gives each about ``BURST_PER_SLOT`` tasks, so that
#: every Celery pool process has run tasks (its memory after that is the instance's steady state).
SLOTS = WORKERS * CONCURRENCY
BURST_PER_SLOT = 4


def _label(proc: psutil.Process) -> str:
    """Name a process by what it runs (airflow <component>, celery pool child, task …)."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    text = " ".join(cmd)
    if "api_server" in text or "_api_server" in text:
        return "api-server"
    for name in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker"):
        if name in text:
            return name
    if "_watchdog" in text:
        return "watchdog"
    return proc.name()


def sample(pids: set[int]) -> tuple[int, dict[str, int]]:
    """Return the PSS sum over ``pids`` in bytes and its split by process kind."""
    total = 0
    by_kind: dict[str, int] = defaultdict(int)
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            pss = int(proc.memory_full_info().pss)
        except psutil.Error:
            continue
        total += pss
        by_kind[_label(proc)] += pss
    return total, dict(by_kind)


def _snapshot(inst: Any) -> dict[str, Any]:
    """``SAMPLES`` PSS sums ``INTERVAL`` s apart; the median and the split of the sample nearest it."""
    samples = []
    for _ in range(SAMPLES):
        pids = inst.pids()
        samples.append((sample(pids), len(pids)))
        time.sleep(INTERVAL)
    totals = [total for (total, _), _ in samples]
    median = statistics.median(totals)
    (_, by_kind), processes = min(samples, key=lambda s: abs(s[0][0] - median))
    return {
        "pss_bytes": median,
        "pss_samples_bytes": totals,
        "processes": processes,
        "by_kind_bytes": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
    }


def measure(broker: str) -> dict[str, Any]:
    """Measure an instance fresh (after one smoke run) and settled (after a burst on every slot)."""
    with instance(broker, hint=f"footprint_{broker}", concurrency=CONCURRENCY) as inst:
        api = Api(inst)
        api.ready("celery_smoke")
        api.ready("celery_burst")
        api.run("celery_smoke", {})
        time.sleep(SETTLE)
        fresh = _snapshot(inst)
        with tempfile.TemporaryDirectory(prefix="mlwf-bench-footprint-") as markers:
            api.run("celery_burst", {"marker_dir": markers, "n": BURST_PER_SLOT * SLOTS})
            ran = len(list(Path(markers).glob("celery_burst__*")))
        if ran != BURST_PER_SLOT * SLOTS:
            raise RuntimeError(f"the burst ran {ran} of {BURST_PER_SLOT * SLOTS} tasks")
        time.sleep(SETTLE)
        settled = _snapshot(inst)
    pool = sum(1 for kind in settled["by_kind_bytes"] if "ForkPoolWorker" in kind)
    supervisors = sum(1 for kind in settled["by_kind_bytes"] if "airflow supervisor" in kind)
    if broker != "local" and pool + supervisors == 0:
        raise RuntimeError(f"the {broker} instance has no Celery pool process: {settled}")
    return {**settled, "fresh": fresh}


def main() -> None:
    started = time.monotonic()
    env_before = environment("instance_footprint")
    orders = abba(ROUNDS)
    arms = {"candidate": "database", "baseline": "local"}
    runs: dict[str, list[dict[str, Any]]] = {"database": [], "local": []}
    for order in orders:
        for side in order:
            runs[arms[side]].append(measure(arms[side]))
    celery = [r["pss_bytes"] / GIB for r in runs["database"]]
    local = [r["pss_bytes"] / GIB for r in runs["local"]]
    celery_fresh = [r["fresh"]["pss_bytes"] / GIB for r in runs["database"]]
    local_fresh = [r["fresh"]["pss_bytes"] / GIB for r in runs["local"]]
    ratio = paired_ratio(celery, local)
    ratios = ratio.pop("ratios")
    estimates = {
        "celery_pss_gib": estimate(celery),
        "local_pss_gib": estimate(local),
        "ratio": ratio,
        "celery_fresh_pss_gib": estimate(celery_fresh),
        "local_fresh_pss_gib": estimate(local_fresh),
    }
    c = estimates["celery_pss_gib"]
    low, high = c["ci95"]
    verdict = "met" if high <= LIMIT_GIB else "missed" if low > LIMIT_GIB else "not shown"
    write_result(
        "instance_footprint",
        description=(
            "PSS summed over every process of an instance (api-server, scheduler, dag-processor, "
            f"triggerer, watchdog, and with Celery {WORKERS} workers x {CONCURRENCY} slots) on "
            f"PostgreSQL, settled: after a burst of {BURST_PER_SLOT} tasks per slot and "
            f"{SETTLE:.0f} s idle (fresh: after one smoke run), median of {SAMPLES} samples "
            f"{INTERVAL:.0f} s apart: CeleryExecutor on the database broker vs "
            f"LocalExecutor (parallelism {WORKERS * CONCURRENCY}); a fresh instance each, "
            f"{ROUNDS} rounds in ABBA order"
        ),
        estimates=estimates,
        headline="celery_pss_gib",
        meaning=(
            "GiB of PSS of a settled Celery instance (database broker), median over rounds; lower "
            "is better (target <= 1.3 GiB); ratio: to the LocalExecutor instance, and the fresh "
            "instances, for context"
        ),
        samples={
            "celery_pss_gib": celery,
            "local_pss_gib": local,
            "celery_fresh_pss_gib": celery_fresh,
            "local_fresh_pss_gib": local_fresh,
            "ratios": ratios,
            "celery_runs": runs["database"],
            "local_runs": runs["local"],
            "order": [[arms[side] for side in order] for order in orders],
        },
        details={
            "celery_workers": WORKERS,
            "concurrency_per_worker": CONCURRENCY,
            "samples_per_instance": SAMPLES,
            "rounds": ROUNDS,
            "celery": version("celery"),
            "wall_s": time.monotonic() - started,
        },
        environment=env_before,
        summary=(
            f"instance_footprint: settled Celery instance {c['value']:.2f} GiB PSS (95% CI "
            f"{low:.2f}-{high:.2f}, target <= {LIMIT_GIB} GiB: {verdict}; fresh "
            f"{estimates['celery_fresh_pss_gib']['value']:.2f} GiB), "
            f"{ratio['value']:.2f}x LocalExecutor ({estimates['local_pss_gib']['value']:.2f} GiB), "
            f"{ROUNDS} rounds"
        ),
    )


if __name__ == "__main__":
    main()
