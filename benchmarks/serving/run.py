"""serving: mlwf's prediction service vs ``mlflow models serve``, throughput at p99 <= 50 ms.

Both serve the same scikit-learn LogisticRegression (breast_cancer) with one worker each, their
default and how each is deployed (``ServeModelOperator(workers=1)``, ``mlflow models serve -w
1``), on loopback, each in its own process group:

- **candidate:** ``POST /predict`` of mlwf's service (``mlwf_operators.serving.start_service``);
- **baseline:** ``POST /invocations`` of ``mlflow models serve --env-manager local``.

The load is mlwf's own generator (``mlwf_operators.loadgen.run_load``, which ``benchmarks/loadgen``
compares with wrk) **open loop**: requests are due on a fixed clock and latency counts from the
due time, so a server that falls behind shows it as latency. One-row requests.

A **probe** offers a rate for PROBE_S seconds; it passes when no request fails and p99 <= 50 ms.
Each server's **highest passing rate** is searched per round: from its last round's rate, step
by STEP up (or down) until the outcome flips, then bisect REFINE times; the round's value is the
throughput achieved at the highest passing probe. A warm-up search per server (not counted) finds
where to start. Then, at one **equal load** (EQUAL_LOAD x the baseline's warm-up rate, the same
for both), one probe per server gives each one's p99.

ROUNDS rounds in ABBA order (which server goes first alternates). Estimates, each the median of
the per-round ratios with a 95 % bootstrap interval: ``throughput_ratio`` (target >= 1.5, issue
15) and ``p99_ratio_equal_load`` (no target). Sanity checks (the run fails): both servers give
the same predictions, and both are alive at the end.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
from mlwf_operators.loadgen import LoadGenError, run_load
from mlwf_operators.processes import kill_tree, wait_until_healthy
from mlwf_operators.serving import start_service, stop_service
from mlwf_operators.trainers import run_trainer
from mlwf_operators.trainers.sklearn_reference import load_model
from mlwf_testsupport import free_port
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result

ROUNDS = int(os.environ.get("MLWF_BENCH_SERVING_ROUNDS", "8"))
P99_MS = 50.0
PROBE_S = 3.0
CONNECTIONS = 64  # at most in flight; open loop: more due requests wait, and it counts as latency
STEP = 1.25
REFINE = 3
MAX_PROBES = 12  # per search, a bound
MIN_RATE = 10.0
EQUAL_LOAD = 0.8
WORKERS = 1
BODY = json.dumps({"instances": [[1.0] * 30]}).encode()
CHECK = {"instances": [[float(i % 7) for i in range(30)], [0.5] * 30, [1.0] * 30]}


def probe(url: str, rate: float) -> dict[str, Any]:
    """One open-loop run at ``rate`` requests/s: its numbers and whether it passed."""
    try:
        load = run_load(url, method="POST", body=BODY, duration=PROBE_S, rate=rate,
                        concurrency=CONNECTIONS, timeout=5.0)  # fmt: skip
        result: dict[str, Any] = dict(load)
    except LoadGenError as error:
        result = {"requests": 0, "errors": -1, "throughput_rps": 0.0, "p99_ms": math.inf,
                  "error": str(error)}  # fmt: skip
    result["rate"] = rate
    result["passed"] = result["errors"] == 0 and result["p99_ms"] <= P99_MS
    if not math.isfinite(result["p99_ms"]):
        result["p99_ms"] = None  # JSON has no infinity
    time.sleep(0.5)  # let the server settle between probes
    return result


def search(url: str, start: float, step: float = STEP) -> dict[str, Any]:
    """The highest passing rate near ``start``: bracket by ``step``, then bisect REFINE times."""
    probes: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    failed: float | None = None
    rate = start
    while len(probes) < MAX_PROBES and rate >= MIN_RATE:
        result = probe(url, rate)
        probes.append(result)
        if result["passed"]:
            best = result
            if failed is not None:
                break
            rate *= step
        else:
            failed = rate
            if best is not None:
                break
            rate /= step
    for _ in range(REFINE):
        if best is None or failed is None or len(probes) >= MAX_PROBES:
            break
        result = probe(url, math.sqrt(best["rate"] * failed))
        probes.append(result)
        if result["passed"]:
            best = result
        else:
            failed = result["rate"]
    if best is None:
        raise SystemExit(f"{url} kept p99 <= {P99_MS} ms at no rate down to {rate:.0f} req/s")
    return {"best": best, "probes": probes}


def predictions(url: str) -> list[Any]:
    request = urllib.request.Request(
        url, data=json.dumps(CHECK).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: list[Any] = json.loads(response.read())["predictions"]
    return answer


def main() -> None:
    started_at = time.monotonic()
    env_before = environment("serving")
    orders = abba(ROUNDS)
    import mlflow.sklearn

    work = Path(tempfile.mkdtemp(prefix="mlwf-bench-serving-"))
    model_dir = work / "model"
    run_trainer("mlwf_operators.trainers.sklearn_reference", {"C": 1.0}, "sklearn://breast_cancer",
                model_dir, timeout=300, log_line=lambda _: None)  # fmt: skip
    model, _ = load_model(model_dir)
    mlflow_model = work / "mlflow-model"
    mlflow.sklearn.save_model(model, str(mlflow_model))

    ours = start_service(model_dir.as_uri(), work / "ours.json", workers=WORKERS,
                         startup_timeout=120, log_file=work / "ours.log")  # fmt: skip
    port = free_port()
    # mlflow runs `uvicorn` by name: put this interpreter's scripts first on PATH, so that
    # `.venv/bin/python benchmarks/serving/run.py` works as `uv run` does.
    env = dict(os.environ, MLFLOW_TRACKING_URI=(work / "mlruns").as_uri(),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))  # fmt: skip
    log = (work / "mlflow.log").open("wb")
    theirs = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKERS)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    urls = {
        "candidate": f"{ours.endpoint}/predict",
        "baseline": f"http://127.0.0.1:{port}/invocations",
    }
    rounds: list[dict[str, Any]] = []
    try:
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/ping", process=theirs, timeout=120)
        except Exception as error:
            log.flush()
            tail = (work / "mlflow.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"{error}\n--- mlflow models serve said:\n{tail}") from error
        answers = {side: predictions(url) for side, url in urls.items()}
        if answers["candidate"] != answers["baseline"]:
            raise SystemExit(f"the servers disagree: {answers}")
        # Warm-up, and where each server's search starts: a coarse ramp up from 100 req/s.
        warmup = {side: search(url, 100.0, step=1.6) for side, url in urls.items()}
        start = {side: w["best"]["rate"] for side, w in warmup.items()}
        equal_rate = EQUAL_LOAD * start["baseline"]
        for order in orders:
            this: dict[str, Any] = {"order": list(order)}
            for side in order:
                found = search(urls[side], start[side])
                start[side] = found["best"]["rate"]
                this[side] = found
            for side in order:
                this[f"{side}_equal_load"] = probe(urls[side], equal_rate)
            rounds.append(this)
        alive = {"candidate": psutil.pid_exists(ours.pid), "baseline": theirs.poll() is None}
    finally:
        stop_service(work / "ours.json")
        kill_tree(theirs.pid, grace=5)
        theirs.wait()
        log.close()
    if not all(alive.values()):
        raise SystemExit(f"a server died during the run: {alive}; logs in {work}")

    samples: dict[str, list[float]] = {}
    for r in rounds:
        for side in ("candidate", "baseline"):
            best = r[side]["best"]
            samples.setdefault(f"{side}_throughput_rps", []).append(best["throughput_rps"])
            samples.setdefault(f"{side}_rate_rps", []).append(best["rate"])
            samples.setdefault(f"{side}_p99_at_max_ms", []).append(best["p99_ms"])
            equal = r[f"{side}_equal_load"]
            samples.setdefault(f"{side}_p99_equal_load_ms", []).append(
                equal["p99_ms"] if equal["p99_ms"] is not None else 10_000.0  # all failed
            )
    estimates: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {}
    for name, key in (
        ("throughput_ratio", "throughput_rps"),
        ("p99_ratio_equal_load", "p99_equal_load_ms"),
    ):
        paired = paired_ratio(samples[f"candidate_{key}"], samples[f"baseline_{key}"])
        ratios[name] = paired.pop("ratios")
        estimates[name] = paired
    for key in sorted(samples):
        estimates[key] = estimate(samples[key])
    t, p = estimates["throughput_ratio"], estimates["p99_ratio_equal_load"]
    c, b = estimates["candidate_throughput_rps"], estimates["baseline_throughput_rps"]
    verdict = "met" if t["ci95"][0] >= 1.5 else ("missed" if t["ci95"][1] < 1.5 else "not shown")
    pc, pb = estimates["candidate_p99_equal_load_ms"], estimates["baseline_p99_equal_load_ms"]
    write_result(
        "serving",
        description=(
            "highest throughput at which each server keeps p99 <= 50 ms with no error: mlwf's "
            "prediction service (POST /predict) vs `mlflow models serve` (POST /invocations, "
            "uvicorn + FastAPI), the same LogisticRegression on breast_cancer, one worker each, "
            f"one-row requests, mlwf's load generator open loop ({PROBE_S:g} s probes, up to "
            f"{CONNECTIONS} connections); per round and server a search from its last rate (steps "
            f"of {STEP}x, then {REFINE} bisections); then p99 of each at one equal load "
            f"({EQUAL_LOAD}x mlflow's warm-up rate); {ROUNDS} ABBA rounds after a warm-up search"
        ),
        estimates=estimates,
        headline="throughput_ratio",
        meaning=(
            "mlwf / mlflow throughput at p99 <= 50 ms, per round; higher is better. "
            "p99_ratio_equal_load: mlwf p99 / mlflow p99 at the same offered rate; lower is better"
        ),
        samples={**samples, "ratios": ratios, "order": [list(o) for o in orders]},
        details={
            "rounds": ROUNDS,
            "p99_limit_ms": P99_MS,
            "probe_s": PROBE_S,
            "connections": CONNECTIONS,
            "equal_load_rps": equal_rate,
            "warmup": warmup,
            "probes": rounds,
            "versions": {name: version(name) for name in ("mlflow", "scikit-learn", "uvicorn")},
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"serving: at p99 <= {P99_MS:g} ms mlwf {c['value']:,.0f} req/s vs mlflow "
            f"{b['value']:,.0f} req/s: {t['value']:.2f}x (95% CI {t['ci95'][0]:.2f}-"
            f"{t['ci95'][1]:.2f}, target 1.5: {verdict}); p99 at {equal_rate:,.0f} req/s "
            f"{pc['value']:.1f} ms vs {pb['value']:.1f} ms: {p['value']:.2f}x (CI "
            f"{p['ci95'][0]:.2f}-{p['ci95'][1]:.2f}); {ROUNDS} rounds"
        ),
    )


if __name__ == "__main__":
    main()
