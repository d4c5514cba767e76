"""Our prediction service vs `mlflow models serve` on the same scikit-learn model, same load generator.

Both run with 1 worker on loopback; each is loaded closed-loop at fixed concurrency, alternating
between the two for every repetition; throughput and p99 are the medians over repetitions.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from mlwf_operators.loadgen import run_load
from mlwf_operators.processes import kill_tree, wait_until_healthy
from mlwf_operators.serving import start_service, stop_service
from mlwf_operators.trainers import run_trainer
from mlwf_operators.trainers.sklearn_reference import load_model
from mlwf_testsupport import free_port

NAME = "serving"
CONCURRENCY = 16
DURATION = 5.0
REPETITIONS = 3
WORKERS = 1
BODY = json.dumps({"instances": [[1.0] * 30]}).encode()


def main() -> None:
    import mlflow.sklearn

    work = Path(tempfile.mkdtemp(prefix="mlwf-bench-serving-"))
    model_dir = work / "model"
    run_trainer(
        "mlwf_operators.trainers.sklearn_reference",
        {"C": 1.0},
        "sklearn://breast_cancer",
        model_dir,
        timeout=300,
        log_line=lambda _: None,
    )
    model, _ = load_model(model_dir)
    mlflow_model = work / "mlflow-model"
    mlflow.sklearn.save_model(model, str(mlflow_model))

    ours = start_service(
        model_dir.as_uri(), work / "ours.json", workers=WORKERS, startup_timeout=120
    )
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=(work / "mlruns").as_uri())
    log = open(work / "mlflow.log", "wb")  # noqa: SIM115 - closed in finally
    theirs = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(mlflow_model),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(WORKERS),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/ping", process=theirs, timeout=120)
        targets = {
            "mlwf": f"{ours.endpoint}/predict",
            "mlflow": f"http://127.0.0.1:{port}/invocations",
        }
        for url in targets.values():  # warm up, and prove both answer correctly
            run_load(url, method="POST", body=BODY, duration=1.0, concurrency=CONCURRENCY)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(REPETITIONS):
            for name, url in targets.items():
                result = run_load(
                    url, method="POST", body=BODY, duration=DURATION, concurrency=CONCURRENCY
                )
                if result["errors"]:
                    raise RuntimeError(f"{name}: {result['errors']} errors")
                runs[name].append(dict(result))
    finally:
        stop_service(work / "ours.json")
        kill_tree(theirs.pid, grace=5)
        theirs.wait()
        log.close()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    ratio = median("mlwf", "throughput_rps") / median("mlflow", "throughput_rps")
    p99_ratio = median("mlwf", "p99_ms") / median("mlflow", "p99_ms")
    result = {
        "benchmark": NAME,
        "description": (
            f"POST /predict of our service vs POST /invocations of `mlflow models serve` (uvicorn + FastAPI), "
            f"same LogisticRegression on breast_cancer, {WORKERS} worker each, closed loop at concurrency "
            f"{CONCURRENCY}, {DURATION:g} s per run, one-row requests, mlwf load generator"
        ),
        "measurements": {
            "candidate_throughput_rps": median("mlwf", "throughput_rps"),
            "baseline_throughput_rps": median("mlflow", "throughput_rps"),
            "candidate_p99_ms": median("mlwf", "p99_ms"),
            "baseline_p99_ms": median("mlflow", "p99_ms"),
            "candidate_p50_ms": median("mlwf", "p50_ms"),
            "baseline_p50_ms": median("mlflow", "p50_ms"),
            "p99_ratio": p99_ratio,
            "repetitions": REPETITIONS,
            "statistic": "median",
            "runs": runs,
        },
        "ratio": ratio,
        "ratio_meaning": "candidate throughput / baseline throughput; higher is better (p99_ratio: lower is better)",
        "environment": {
            "python": platform.python_version(),
            "mlwf-operators": version("mlwf-operators"),
            "mlflow": version("mlflow"),
            "scikit-learn": version("scikit-learn"),
            "uvicorn": version("uvicorn"),
            "cpus": os.cpu_count(),
        },
    }
    out = Path(__file__).resolve().parent.parent / "results" / f"{NAME}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"serving: {result['measurements']['candidate_throughput_rps']:,.0f} req/s vs mlflow "
        f"{result['measurements']['baseline_throughput_rps']:,.0f} req/s ({ratio:.2f}x), p99 "
        f"{result['measurements']['candidate_p99_ms']:.2f} ms vs {result['measurements']['baseline_p99_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
