"""Constructors: create → DAG visible latency on real Airflow, and parse cost vs hand-written DAGs.

1. Latency: an EmbeddedInstance with ``[dag_processor] refresh_interval = 300``; each repetition
   creates an instance through ``POST /mlwf/constructors/instances`` and polls
   ``GET /api/v2/dags/{id}`` every 0.1 s until it answers 200 (target ≤ 10 s).
2. Parse cost: 1,000 generated instance files vs 1,000 hand-written files defining the same DAG
   (same params, same TaskFlow tasks), each folder parsed by Airflow's DagBag in a fresh
   interpreter, alternating, in the same run (target ratio ≤ 1.2).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dags" / "example_constructors.py"
RESULT = ROOT / "benchmarks" / "results" / "constructors.json"
N_FILES = 1000
PARSE_REPS = 3
LATENCY_REPS = 5

HAND_WRITTEN = '''"""Hand-written equivalent of one train_evaluate instance (airflow dag)."""
import datetime
from airflow.sdk import DAG, Param, get_current_context, task

with DAG(
    "hand_{i}",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={{
        "dataset": Param("iris", description="dataset name", type="string", pattern="^(?:[a-z0-9_]{{1,40}})$"),
        "learning_rate": Param({lr}, description="gradient step size", type="number", minimum=0.0001, maximum=1.0),
        "epochs": Param({epochs}, description="training epochs", type="integer", minimum=1, maximum=1000),
        "optimizer": Param("sgd", enum=["sgd", "momentum"]),
        "max_loss": Param(1.0, description="evaluation threshold", type="number", minimum=0.0),
        "tags": Param([], description="free-form labels", type="array", items={{"type": "string"}}, maxItems=10),
        "schedule": Param("none", enum=["none", "@daily", "@weekly"]),
    }},
    tags=["mlwf-constructors", "train_evaluate"],
    description="train_evaluate on iris",
) as dag:

    @task
    def train() -> float:
        p = get_current_context()["params"]
        weight, velocity = 3.0, 0.0
        for _ in range(int(p["epochs"])):
            gradient = 2 * weight
            velocity = (0.9 * velocity if p["optimizer"] == "momentum" else 0.0) + gradient
            weight -= float(p["learning_rate"]) * velocity
        return weight * weight

    @task
    def evaluate(loss: float) -> bool:
        limit = float(get_current_context()["params"]["max_loss"])
        if loss > limit:
            raise ValueError(f"loss {{loss:.4f}} exceeds max_loss {{limit}}")
        return True

    evaluate(train())
'''

PARSE = """
import sys, time
sys.path.insert(0, {dags!r})
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
bag = DagBag({dags!r})
elapsed = time.perf_counter() - start
assert not bag.import_errors, list(bag.import_errors.items())[:2]
print(len(bag.dags), elapsed)
"""


def parse_seconds(dags: Path, expected: int) -> float:
    env = dict(
        os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="0"
    )
    proc = subprocess.run(
        [sys.executable, "-c", PARSE.format(dags=str(dags))],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    count, elapsed = proc.stdout.split()[-2:]
    assert int(count) == expected, (count, expected)
    return float(elapsed)


def parse_benchmark(work: Path) -> dict[str, float]:
    from mlwf_constructors import Constructors, Settings

    generated = work / "generated"
    generated.mkdir()
    shutil.copy(EXAMPLE, generated / EXAMPLE.name)
    service = Constructors(
        Settings(
            store_url=f"sqlite:///{work / 'store.db'}",
            dags_folder=generated,
            bundle_modules=("example_constructors",),
        ),
        airflow_db=False,
    )
    hand = work / "hand"
    hand.mkdir()
    shutil.copy(EXAMPLE, hand / EXAMPLE.name)  # same imports available in both folders
    for i in range(N_FILES):
        lr, epochs = round(0.001 * (i % 900 + 1), 4), i % 50 + 1
        service.create(
            f"gen_{i}", "train_evaluate", {"learning_rate": lr, "epochs": epochs}, owner="bench"
        )
        (hand / f"hand_{i}.py").write_text(HAND_WRITTEN.format(i=i, lr=lr, epochs=epochs))
    parse_seconds(generated, N_FILES)  # warm-up (bytecode caches, page cache)
    parse_seconds(hand, N_FILES)
    gen_times, hand_times = [], []
    for _ in range(PARSE_REPS):
        gen_times.append(parse_seconds(generated, N_FILES))
        hand_times.append(parse_seconds(hand, N_FILES))
    return {
        "generated_s": statistics.median(gen_times),
        "hand_written_s": statistics.median(hand_times),
    }


def latency_benchmark(work: Path) -> list[float]:
    from mlwf_instance import EmbeddedInstance
    from mlwf_testsupport import free_port

    dags = work / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    instance = EmbeddedInstance(
        work / "home",
        dags_folder=dags,
        port=free_port(),
        dag_refresh_interval=300,
        extra_config={"mlwf_constructors": {"bundle_modules": "example_constructors"}},
    )
    latencies = []
    with instance:
        headers = {"Authorization": f"Bearer {instance.api_token()}"}
        client = httpx.Client(base_url=instance.url, headers=headers, timeout=30)
        time.sleep(5)  # let the first full parse of the folder finish
        for i in range(LATENCY_REPS):
            dag_id = f"latency_{i}"
            start = time.monotonic()
            response = client.post(
                "/mlwf/constructors/instances",
                json={"instance_id": dag_id, "constructor": "train_evaluate", "values": {}},
            )
            response.raise_for_status()
            while client.get(f"/api/v2/dags/{dag_id}").status_code != 200:
                if time.monotonic() - start > 120:
                    raise RuntimeError(f"{dag_id} not visible after 120 s")
                time.sleep(0.1)
            latencies.append(time.monotonic() - start)
    return latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "p").mkdir()
        (work / "l").mkdir()
        parse = parse_benchmark(work / "p")
        latencies = latency_benchmark(work / "l")
    ratio = parse["generated_s"] / parse["hand_written_s"]
    result = {
        "benchmark": "constructors",
        "description": (
            "parse time of 1,000 generated constructor-instance DAG files vs 1,000 hand-written "
            "files defining the same DAG (DagBag, fresh interpreter, same run); and create (API) → "
            "DAG visible in GET /api/v2/dags/{id} with refresh_interval=300 s"
        ),
        "measurements": {
            "candidate_s": round(parse["generated_s"], 3),
            "baseline_s": round(parse["hand_written_s"], 3),
            "files": N_FILES,
            "repetitions": PARSE_REPS,
            "statistic": "median",
            "create_to_visible_s": [round(x, 2) for x in latencies],
            "create_to_visible_median_s": round(statistics.median(latencies), 2),
            "create_to_visible_max_s": round(max(latencies), 2),
            "create_to_visible_target_s": 10.0,
        },
        "ratio": round(ratio, 3),
        "ratio_meaning": "generated-file parse time / hand-written parse time; lower is better (target <= 1.2)",
        "environment": {
            "python": platform.python_version(),
            "apache-airflow": version("apache-airflow"),
            "mlwf-constructors": version("mlwf-constructors"),
            "cpus": os.cpu_count(),
        },
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"constructors: 1,000 instances parse in {parse['generated_s']:.2f} s, {ratio:.2f}x hand-written "
        f"({parse['hand_written_s']:.2f} s); create → visible median {statistics.median(latencies):.1f} s, "
        f"max {max(latencies):.1f} s"
    )


if __name__ == "__main__":
    main()
