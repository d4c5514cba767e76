"""dag_parse: the parse time of each example DAG file against an EmptyOperator DAG of the same shape.

The DAG processor parses a file in a process that has already imported Airflow: so each sample
is a fresh interpreter that imports ``airflow.sdk`` and Airflow's ``DagBag``, parses a one-task
warm-up DAG (untimed: it loads the policy plugins, mlwf-types included, and Airflow's lazy
parts), then times ``DagBag`` of the one file, the file's own cost: its imports (mlwf modules and
what they pull in) and building its DAGs, checked by the cluster policies as in production.

The baseline of each example file is a generated file defining DAGs of the same shape (the same
DAG ids, task ids and dependencies) made of ``EmptyOperator`` s, parsed the same way. Samples are
paired (example, baseline) and alternate ABBA, each in a fresh interpreter, after one untimed
warm-up pair that also writes the ``.pyc`` files. Per file the JSON reports the medians, the
geometric mean of the paired ratios with a t-based 95 % confidence interval (on the log ratios),
and whether the ratio meets the target (<= 1.3x). A missed target is reported, not an error.

    uv run python benchmarks/dag_parse/run.py           # full run (8 pairs per file)
    uv run python benchmarks/dag_parse/run.py --quick   # smoke run (2 pairs per file)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "examples" / "dags"
RESULT = ROOT / "benchmarks" / "results" / "dag_parse.json"
NAME = "dag_parse"
TARGET_RATIO = 1.3
FULL_PAIRS = 8
QUICK_PAIRS = 2
WORKER_TIMEOUT_S = 300  # one fresh interpreter importing Airflow and parsing one file
#: Two-sided 95 % quantiles of Student's t, by degrees of freedom (1.96 beyond the table).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip

WARMUP_DAG = '''"""Warm-up DAG (airflow dag): parsed untimed before the measured file."""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("mlwf_bench_warmup", schedule=None):
    EmptyOperator(task_id="t")
'''


class SanityError(Exception):
    """The benchmark would measure the wrong thing."""


# ---------------------------------------------------------------------------------- worker


def _shape(bag: Any) -> dict[str, Any]:
    """The DAG ids, task ids and dependency edges of everything ``bag`` loaded."""
    return {
        dag_id: {
            "tasks": sorted(dag.task_dict),
            "edges": sorted(
                [up, task.task_id] for task in dag.tasks for up in sorted(task.upstream_task_ids)
            ),
        }
        for dag_id, dag in sorted(bag.dags.items())
    }


def worker(dag_file: str, warmup_dir: str, out: str) -> None:
    """One sample in a fresh interpreter: Airflow imported and warmed up, then the timed parse.

    The timed part is what the DAG processor's parsing child does with a file: ``DagBag`` of the
    one file (import, DAG construction, cluster policies), then ``DagSerialization`` of each DAG
    (Airflow's own ``_serialize_dags``). Before it, as the processor's parent does before it
    forks the child, the ``airflow.*`` modules the file imports are pre-imported.
    """
    import logging

    import airflow.sdk  # noqa: F401  # imported already in the DAG processor that parses files
    import structlog
    from airflow.dag_processing.dagbag import DagBag
    from airflow.dag_processing.processor import _pre_import_airflow_modules, _serialize_dags

    log = structlog.get_logger("dag_parse")
    warm = DagBag(dag_folder=warmup_dir, safe_mode=False, load_op_links=False)
    _serialize_dags(warm, log)
    if warm.import_errors or list(warm.dags) != ["mlwf_bench_warmup"]:
        raise SanityError(f"warm-up parse failed: {warm.import_errors}")
    _pre_import_airflow_modules(dag_file, log)
    logging.disable(logging.CRITICAL)  # nothing to log in the timed parse; keep it out of it
    before = set(sys.modules)
    cpu_started = time.process_time()
    started = time.perf_counter()
    bag = DagBag(dag_folder=dag_file, safe_mode=False, load_op_links=False)
    serialized, serialization_errors = _serialize_dags(bag, log)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    if serialization_errors or len(serialized) != len(bag.dags):
        raise SanityError(f"{dag_file}: DAGs that do not serialize: {serialization_errors}")
    heavy = sorted(
        {m.partition(".")[0] for m in set(sys.modules) - before}
        & {"mlflow", "sklearn", "pandas", "scipy", "optuna", "joblib"}
    )
    Path(out).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "import_errors": {Path(k).name: v for k, v in bag.import_errors.items()},
                "shape": _shape(bag),
                "modules_imported": len(set(sys.modules) - before),
                "heavy_modules_imported": heavy,
            }
        ),
        encoding="utf-8",
    )


# ---------------------------------------------------------------------------------- driver


def baseline_source(source: Path, shape: dict[str, Any]) -> str:
    """A DAG file defining ``shape`` (same DAG ids, task ids, edges) with EmptyOperators only."""
    lines = [
        f'"""EmptyOperator DAGs of the shape of {source.name} (airflow dag): dag_parse baseline."""',
        "import datetime",
        "",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow.sdk import DAG",
        "",
    ]
    if not shape:
        lines.append("# The example defines no DAG: the baseline imports Airflow's DAG API only.")
    for index, (dag_id, dag) in enumerate(shape.items()):
        lines.append(
            f"with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1), "
            f"catchup=False) as dag_{index}:"
        )
        names = {task_id: f"t{i}" for i, task_id in enumerate(dag["tasks"])}
        for task_id, name in names.items():
            lines.append(f"    {name} = EmptyOperator(task_id={task_id!r})")
        for up, down in dag["edges"]:
            lines.append(f"    {names[up]} >> {names[down]}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",  # no SIGALRM per file; nothing to bound here
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return env


def _sample(
    dag_file: Path, warmup_dir: Path, tmp: Path, env: dict[str, str], tag: str
) -> dict[str, Any]:
    out = tmp / f"sample-{tag}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(dag_file),
        str(warmup_dir),
        str(out),
    ]
    proc = subprocess.run(
        cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S
    )
    if proc.returncode != 0 or not out.is_file():
        raise SanityError(
            f"parse of {dag_file.name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    if result["import_errors"]:
        raise SanityError(f"{dag_file.name} has import errors: {result['import_errors']}")
    return result


def paired_ratio(candidate: list[float], baseline: list[float]) -> dict[str, float]:
    """Geometric mean of the paired ratios and its t-based 95 % confidence interval."""
    logs = [math.log(c / b) for c, b in zip(candidate, baseline, strict=True)]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return {"ratio": math.exp(mean), "ci95_low": math.nan, "ci95_high": math.nan}
    t = T975[len(logs) - 2] if len(logs) - 1 <= len(T975) else 1.96
    half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return {
        "ratio": math.exp(mean),
        "ci95_low": math.exp(mean - half),
        "ci95_high": math.exp(mean + half),
    }


def measure(
    example: Path, pairs: int, tmp: Path, warmup_dir: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Paired, alternating samples of ``example`` and its EmptyOperator baseline."""
    first = _sample(example, warmup_dir, tmp, env, f"{example.stem}-shape")  # also writes the .pyc
    shape = first["shape"]
    baseline = tmp / "baselines" / f"{example.stem}_baseline.py"
    baseline.parent.mkdir(exist_ok=True)
    baseline.write_text(baseline_source(example, shape), encoding="utf-8")
    base_first = _sample(baseline, warmup_dir, tmp, env, f"{example.stem}-base-shape")
    if base_first["shape"] != shape:
        raise SanityError(
            f"the baseline of {example.name} has another shape: {base_first['shape']} != {shape}"
        )
    runs: dict[str, list[dict[str, Any]]] = {"example": [], "baseline": []}
    for pair in range(pairs):
        order = ("example", "baseline") if pair % 2 == 0 else ("baseline", "example")
        for kind in order:
            path = example if kind == "example" else baseline
            result = _sample(path, warmup_dir, tmp, env, f"{example.stem}-{pair}-{kind}")
            if result["shape"] != shape:
                raise SanityError(f"{path.name} parsed to another shape in pair {pair}")
            runs[kind].append(result)
    wall = {k: [r["seconds"] for r in v] for k, v in runs.items()}
    cpu = {k: [r["cpu_seconds"] for r in v] for k, v in runs.items()}
    ratio = paired_ratio(wall["example"], wall["baseline"])
    cpu_ratio = paired_ratio(cpu["example"], cpu["baseline"])
    return {
        "file": f"examples/dags/{example.name}",
        "dags": len(shape),
        "tasks": sum(len(d["tasks"]) for d in shape.values()),
        "shape": shape,
        "example_median_s": round(statistics.median(wall["example"]), 4),
        "baseline_median_s": round(statistics.median(wall["baseline"]), 4),
        "ratio": round(ratio["ratio"], 3),
        "ratio_ci95": [round(ratio["ci95_low"], 3), round(ratio["ci95_high"], 3)],
        "pass": ratio["ratio"] <= TARGET_RATIO,
        "extra_ms": round(
            1000
            * statistics.median(
                e - b for e, b in zip(wall["example"], wall["baseline"], strict=True)
            ),
            1,
        ),
        "extra_cpu_ms": round(
            1000
            * statistics.median(
                e - b for e, b in zip(cpu["example"], cpu["baseline"], strict=True)
            ),
            1,
        ),
        "cpu_ratio": round(cpu_ratio["ratio"], 3),
        "cpu_ratio_ci95": [round(cpu_ratio["ci95_low"], 3), round(cpu_ratio["ci95_high"], 3)],
        "per_pair_s": {k: [round(x, 4) for x in v] for k, v in wall.items()},
        "per_pair_cpu_s": {k: [round(x, 4) for x in v] for k, v in cpu.items()},
        "modules_imported": {
            "example": runs["example"][0]["modules_imported"],
            "baseline": runs["baseline"][0]["modules_imported"],
        },
        "heavy_modules_imported": first["heavy_modules_imported"],
    }


def main(quick: bool) -> int:
    pairs = QUICK_PAIRS if quick else FULL_PAIRS
    examples = sorted(EXAMPLES.glob("*.py"))
    files: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlwf-dag-parse-") as name:
        tmp = Path(name)
        (tmp / "dags").mkdir()
        warmup_dir = tmp / "warmup"
        warmup_dir.mkdir()
        (warmup_dir / "warmup_dag.py").write_text(WARMUP_DAG, encoding="utf-8")
        env = _environment(tmp)
        try:
            for example in examples:
                files.append(measure(example, pairs, tmp, warmup_dir, env))
        except SanityError as exc:
            print(f"{NAME}: {exc}", file=sys.stderr)
            return 1
        except subprocess.TimeoutExpired as exc:
            print(f"{NAME}: a parse exceeded {exc.timeout} s", file=sys.stderr)
            return 1
    worst = max(files, key=lambda f: f["ratio"])
    report = {
        "benchmark": NAME,
        "description": (
            "per example DAG file: Airflow DagBag(safe_mode=False, load_op_links=False) of the one "
            "file plus DagSerialization of its DAGs (what the DAG processor's parsing child does), "
            "in a fresh interpreter that already imported airflow.sdk, parsed and serialized a "
            "warm-up DAG and pre-imported the airflow modules the file imports (as the processor "
            "does before it forks the child), against a generated "
            "file of EmptyOperator DAGs of the same shape (DAG ids, task ids, edges); paired samples "
            "alternating ABBA after one untimed warm-up pair"
        ),
        "measurements": {
            "candidate_s": worst["example_median_s"],
            "baseline_s": worst["baseline_median_s"],
            "repetitions": pairs,
            "statistic": "median (the file with the highest ratio); per file below",
        },
        "ratio": worst["ratio"],
        "extra_ms_meaning": (
            "per file, the median of the paired differences example - baseline (wall clock; "
            "extra_cpu_ms in process CPU time): what the file costs beyond EmptyOperator DAGs"
        ),
        "ratio_meaning": (
            "example file parse time / EmptyOperator baseline of the same shape: the geometric mean "
            "of the paired ratios, per file; the top-level value is the worst file's; lower is better"
        ),
        "target_ratio": TARGET_RATIO,
        "pass": all(f["pass"] for f in files),
        "quick": quick,
        "files": files,
        "environment": {
            "python": platform.python_version(),
            "apache-airflow": version("apache-airflow"),
            **{
                p: version(p)
                for p in ("mlwf-types", "mlwf-operators", "mlwf-constructors", "mlwf-tuning")
            },
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    per_file = ", ".join(
        f"{Path(f['file']).stem} {f['ratio']:.2f}x [{f['ratio_ci95'][0]:.2f}, {f['ratio_ci95'][1]:.2f}] "
        f"(+{f['extra_ms']:.0f} ms)" + ("" if f["pass"] else " MISS")
        for f in files
    )
    verdict = "pass" if report["pass"] else "FAIL"
    print(
        f"{NAME}: example DAG parse time vs EmptyOperator DAGs of the same shape (95% CI, "
        f"{pairs} pairs): {per_file} (target <= {TARGET_RATIO}x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_PAIRS} pairs per file"
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("DAG_FILE", "WARMUP_DIR", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        sys.exit(0)
    sys.exit(main(args.quick))
