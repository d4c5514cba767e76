"""constructors: create -> DAG visible with 1,000 instances present, and the parse cost of
generated files against hand-written ones, on real Airflow.

1. **create -> visible** (issue 15: <= 10 s with 1,000 instances already present). An
   ``EmbeddedInstance`` (SQLite, LocalExecutor: what ``mlwf up`` runs) with
   ``[dag_processor] refresh_interval = 300``, so that only the constructors' parse request can
   make a new DAG appear in time. First 1,000 instances are created through
   ``POST /mlwf/constructors/instances`` and the benchmark waits until all 1,000 DAGs answer in
   ``GET /api/v2/dags`` (checked again before every measurement). Then, after one untimed
   warm-up, each of ``ROUNDS`` creations is timed from the POST until ``GET
   /api/v2/dags/{id}`` answers 200 (polled every 0.1 s, bounded at 120 s). The target is
   absolute: the upper end of the 95 % bootstrap interval of the median.
2. **parse_ratio** (<= 1.2). 1,000 generated instance files against 1,000 hand-written files
   defining the same DAG (same params, same TaskFlow tasks), each folder parsed by Airflow's
   ``DagBag`` in a fresh interpreter, in paired rounds in ABBA order after one untimed warm-up
   pair: the median of the per-round ratios with its 95 % bootstrap interval.

A sanity check that fails (a parse with import errors or the wrong number of DAGs, an instance
not created, fewer than 1,000 DAGs present) exits non-zero; a missed target does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mlwf_testsupport.benchmark import (
    SanityError,
    abba,
    environment,
    estimate,
    paired_ratio,
    write_result,
)

NAME = "constructors"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dags" / "example_constructors.py"
N_FILES = 1000  # the parse folders
N_PRESENT = 1000  # instances present in the instance before create -> visible is measured
PARSE_ROUNDS = int(os.environ.get("MLWF_BENCH_CONSTRUCTORS_PARSE_ROUNDS", "10"))
LATENCY_ROUNDS = int(os.environ.get("MLWF_BENCH_CONSTRUCTORS_LATENCY_ROUNDS", "20"))
VISIBLE_TARGET_S = 10.0
PARSE_TARGET = 1.2
VISIBLE_BOUND_S = 120.0  # one creation; beyond it the instance is broken, not slow
SEED_BOUND_S = 1800.0  # 1,000 creations and their parses
PARSE_TIMEOUT_S = 1800


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
if bag.import_errors:
    sys.exit(f"import errors: {{list(bag.import_errors.items())[:2]}}")
print(len(bag.dags), elapsed)
"""


def _values(i: int) -> dict[str, Any]:
    return {"learning_rate": round(0.001 * (i % 900 + 1), 4), "epochs": i % 50 + 1}


def parse_seconds(dags: Path, expected: int, home: Path) -> float:
    """One DagBag of ``dags`` in a fresh interpreter; its seconds (sanity: every DAG, no error)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="0",  # no SIGALRM per file; nothing to bound here
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    )
    proc = subprocess.run(
        [sys.executable, "-c", PARSE.format(dags=str(dags))],
        capture_output=True,
        text=True,
        env=env,
        timeout=PARSE_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise SanityError(f"parse of {dags.name} failed:\n{proc.stderr[-3000:]}")
    count, elapsed = proc.stdout.split()[-2:]
    if int(count) != expected:
        raise SanityError(f"{dags.name}: {count} DAGs parsed, expected {expected}")
    return float(elapsed)


def parse_benchmark(work: Path) -> dict[str, Any]:
    """Generated against hand-written files: paired ABBA rounds, every sample kept."""
    from mlwf_constructors import Constructors, Settings

    home = work / "home"
    home.mkdir()
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
        values = _values(i)
        service.create(f"gen_{i}", "train_evaluate", values, owner="bench")
        (hand / f"hand_{i}.py").write_text(HAND_WRITTEN.format(i=i, lr=values["learning_rate"],
                                                               epochs=values["epochs"]))  # fmt: skip
    folders = {"candidate": generated, "baseline": hand}
    for folder in folders.values():  # warm-up (bytecode caches, page cache)
        parse_seconds(folder, N_FILES, home)
    orders = abba(PARSE_ROUNDS)
    samples: dict[str, list[float]] = {"candidate": [], "baseline": []}
    for order in orders:
        for side in order:
            samples[side].append(parse_seconds(folders[side], N_FILES, home))
    return {
        "generated_s": samples["candidate"],
        "hand_written_s": samples["baseline"],
        "order": [list(o) for o in orders],
    }


def _present(client: httpx.Client, prefix: str) -> int:
    response = client.get("/api/v2/dags", params={"dag_id_pattern": prefix, "limit": 1})
    response.raise_for_status()
    return int(response.json()["total_entries"])


def _create(client: httpx.Client, instance_id: str, values: dict[str, Any]) -> None:
    response = client.post(
        "/mlwf/constructors/instances",
        json={"instance_id": instance_id, "constructor": "train_evaluate", "values": values},
    )
    if response.status_code >= 400:
        raise SanityError(f"creating {instance_id}: {response.status_code} {response.text[:500]}")


def _create_to_visible(client: httpx.Client, instance_id: str) -> float:
    started = time.monotonic()
    _create(client, instance_id, {})
    while client.get(f"/api/v2/dags/{instance_id}").status_code != 200:
        if time.monotonic() - started > VISIBLE_BOUND_S:
            raise SanityError(f"{instance_id} not visible after {VISIBLE_BOUND_S:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


def latency_benchmark(work: Path) -> dict[str, Any]:
    """Create 1,000 instances, wait until their DAGs are all there, then time new creations."""
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
    with instance:
        headers = {"Authorization": f"Bearer {instance.api_token()}"}
        client = httpx.Client(base_url=instance.url, headers=headers, timeout=60)
        seed_started = time.monotonic()
        for i in range(N_PRESENT):
            _create(client, f"present_{i}", _values(i))
        created_s = time.monotonic() - seed_started
        while (present := _present(client, "present_")) < N_PRESENT:
            if time.monotonic() - seed_started > SEED_BOUND_S:
                raise SanityError(
                    f"{present} of {N_PRESENT} instances' DAGs visible after {SEED_BOUND_S:.0f} s"
                )
            time.sleep(2)
        seeded_s = time.monotonic() - seed_started
        warmup_s = _create_to_visible(client, "latency_warmup")
        latencies, present_before = [], []
        for i in range(LATENCY_ROUNDS):
            present = _present(client, "present_")
            if present != N_PRESENT:
                raise SanityError(f"{present} of the {N_PRESENT} present instances' DAGs visible")
            present_before.append(present)
            latencies.append(_create_to_visible(client, f"latency_{i}"))
        total = _present(client, "")
        client.close()
    return {
        "create_to_visible_s": latencies,
        "present_before": present_before,
        "warmup_s": warmup_s,
        "seed_create_s": created_s,
        "seed_visible_s": seeded_s,
        "dags_at_end": total,
    }


def _verdict(found: dict[str, Any], bound: float) -> str:
    low, high = found["ci95"]
    if high <= bound:
        return "met"
    return "MISSED" if low > bound else "not shown"


def main() -> int:
    started_at = time.monotonic()
    env_before = environment(NAME)
    try:
        with tempfile.TemporaryDirectory(prefix="mlwf-bench-constructors-") as tmp:
            work = Path(tmp)
            (work / "p").mkdir()
            (work / "l").mkdir()
            parse = parse_benchmark(work / "p")
            latency = latency_benchmark(work / "l")
    except SanityError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print(f"{NAME}: a parse exceeded {exc.timeout} s", file=sys.stderr)
        return 1
    ratio = paired_ratio(parse["generated_s"], parse["hand_written_s"])
    visible = latency["create_to_visible_s"]
    estimates = {
        "create_to_visible_s": estimate(visible),
        "parse_ratio": {k: v for k, v in ratio.items() if k != "ratios"},
        "generated_parse_s": estimate(parse["generated_s"]),
        "hand_written_parse_s": estimate(parse["hand_written_s"]),
    }
    v, r = estimates["create_to_visible_s"], estimates["parse_ratio"]
    write_result(
        NAME,
        description=(
            f"create (POST /mlwf/constructors/instances) -> DAG visible in GET /api/v2/dags/{{id}} "
            f"on an EmbeddedInstance (SQLite, LocalExecutor, refresh_interval=300 s) with "
            f"{N_PRESENT} instances created through the API and their DAGs visible first, after "
            f"one untimed warm-up; and the parse time of {N_FILES} generated instance files vs "
            f"{N_FILES} hand-written files defining the same DAG (DagBag, fresh interpreter), "
            "paired rounds in ABBA order after one untimed warm-up pair"
        ),
        estimates=estimates,
        headline="create_to_visible_s",
        meaning=(
            "seconds from the create request to the DAG answering in the REST API, median, with "
            f"{N_PRESENT} instances present (absolute target); parse_ratio: generated / "
            "hand-written parse time, the median of the per-round ratios; lower is better"
        ),
        samples={
            "create_to_visible_s": visible,
            "present_before": latency["present_before"],
            "generated_parse_s": parse["generated_s"],
            "hand_written_parse_s": parse["hand_written_s"],
            "parse_ratios": ratio["ratios"],
            "parse_order": parse["order"],
        },
        details={
            "instances_present": N_PRESENT,
            "latency_rounds": LATENCY_ROUNDS,
            "parse_files": N_FILES,
            "parse_rounds": PARSE_ROUNDS,
            "create_to_visible_max_s": max(visible),
            "create_to_visible_warmup_s": latency["warmup_s"],
            "seed_create_s": latency["seed_create_s"],
            "seed_all_visible_s": latency["seed_visible_s"],
            "dags_at_end": latency["dags_at_end"],
            "targets": {"create_to_visible_s": VISIBLE_TARGET_S, "parse_ratio": PARSE_TARGET},
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"{NAME}: create -> visible with {N_PRESENT} instances present {v['value']:.2f} s "
            f"(95% CI {v['ci95'][0]:.2f}-{v['ci95'][1]:.2f}, max {max(visible):.2f} s, target "
            f"{VISIBLE_TARGET_S:.0f} s: {_verdict(v, VISIBLE_TARGET_S)}); {N_FILES} generated "
            f"files parse {r['value']:.2f}x hand-written (95% CI {r['ci95'][0]:.2f}-"
            f"{r['ci95'][1]:.2f}, target {PARSE_TARGET}: {_verdict(r, PARSE_TARGET)})"
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
