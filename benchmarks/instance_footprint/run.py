"""instance_footprint: memory (PSS) of the production topology vs the same on LocalExecutor.

Candidate: an instance on a throwaway PostgreSQL metadata database with the CeleryExecutor on
the database broker and 2 Celery workers of the spec's default ``celery.concurrency`` (4 slots;
``MLWF_BENCH_FOOTPRINT_CONCURRENCY`` changes it): api-server, scheduler, dag-processor,
triggerer, log-server, workers and every process they fork. Baseline: the same instance on the
LocalExecutor with as many task slots (``[core] parallelism`` 8, pre-forked workers).
Both come from ``../celery_broker/stack.py``. Each instance starts fresh, runs the
``celery_smoke`` DAG once (so workers have forked and parsed), idles ``SETTLE`` s, then the
proportional set size (``psutil`` ``memory_full_info().pss``) is summed over every live
process of the instance, ``SAMPLES`` times ``INTERVAL`` s apart; the median counts. The
PostgreSQL server's own processes are shared with everything else and are not counted.
Instances alternate ABBA (``MLWF_BENCH_FOOTPRINT_ROUNDS`` rounds, default 1). Ratio:
candidate / baseline; the candidate's total must stay ≤ 1.3 GiB.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parents[1] / "celery_broker"))
from mlwf_instance import parse_spec
from stack import ROOT, WORKERS, Api, instance

RESULT = ROOT / "benchmarks" / "results" / "instance_footprint.json"
ROUNDS = int(os.environ.get("MLWF_BENCH_FOOTPRINT_ROUNDS", "1"))
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


def _label(proc: psutil.Process) -> str:
    """Name a process by what it runs (airflow <component>, celery pool child, task …)."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    text = " ".join(cmd)
    for name in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker"):
        if name in text:
            return name
    if "_log_server" in text:
        return "log-server"
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


def measure(broker: str) -> dict[str, Any]:
    with instance(broker, hint=f"footprint_{broker}", concurrency=CONCURRENCY) as inst:
        api = Api(inst)
        api.ready("celery_smoke")
        api.run("celery_smoke", {})
        time.sleep(SETTLE)
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
        "processes": processes,
        "by_kind_bytes": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    started = time.monotonic()
    runs: dict[str, list[dict[str, Any]]] = {"database": [], "local": []}
    for _ in range(ROUNDS):
        for arm in ("database", "local", "local", "database"):
            runs[arm].append(measure(arm))
    candidate = statistics.median(r["pss_bytes"] for r in runs["database"])
    baseline = statistics.median(r["pss_bytes"] for r in runs["local"])
    pairs = [
        a["pss_bytes"] / b["pss_bytes"]
        for a, b in zip(runs["database"], runs["local"], strict=True)
    ]
    ratio = candidate / baseline
    result = {
        "benchmark": "instance_footprint",
        "description": (
            "PSS summed over every process of an instance (api-server, scheduler, dag-processor, "
            f"triggerer, log-server, watchdog, and with Celery {WORKERS} workers x {CONCURRENCY} "
            "slots) on PostgreSQL, after one smoke run and 15 s idle: CeleryExecutor on the "
            f"database broker vs LocalExecutor (parallelism {WORKERS * CONCURRENCY}); ABBA"
        ),
        "measurements": {
            "candidate_pss_gib": candidate / GIB,
            "baseline_pss_gib": baseline / GIB,
            "candidate_runs": runs["database"],
            "baseline_runs": runs["local"],
            "paired_ratios": pairs,
            "celery_workers": WORKERS,
            "concurrency_per_worker": CONCURRENCY,
            "samples_per_instance": SAMPLES,
            "rounds_abba": ROUNDS,
            "statistic": "median",
            "limit_gib": LIMIT_GIB,
            "limit_met": candidate / GIB <= LIMIT_GIB,
            "wall_s": time.monotonic() - started,
        },
        "ratio": ratio,
        "ratio_meaning": "Celery topology PSS / LocalExecutor PSS; lower is better",
        "environment": {
            "python": platform.python_version(),
            "apache-airflow": version("apache-airflow"),
            "celery": version("celery"),
            "mlwf-instance": version("mlwf-instance"),
            "cpus": os.cpu_count(),
        },
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    verdict = "within" if candidate / GIB <= LIMIT_GIB else "OVER"
    print(
        f"instance_footprint: Celery topology {candidate / GIB:.2f} GiB PSS ({verdict} the "
        f"{LIMIT_GIB} GiB limit), {ratio:.2f}x LocalExecutor ({baseline / GIB:.2f} GiB)"
    )


if __name__ == "__main__":
    main()
