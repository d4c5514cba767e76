"""dag_parse: the parse time of each example DAG file against an EmptyOperator DAG of the same shape.

Airflow 3.3's DAG processor parses each file in a child that is a bare ``os.fork()`` of the
manager process (``airflow dag-processor``), so the child starts with every module the manager
holds. Each sample is therefore a fresh interpreter that first does what the manager does before
its first fork: ``import airflow`` (which loads the cluster policies, ``mlwf_types.policy`` and
the ``mlwf_types`` package with it, and discovers the providers, ``mlwf_operators`` among them),
imports the ``dag-processor`` command and loads the ``airflow.plugins`` entry points as
``Job()`` does (``mlwf_tuning``, which imports ``mlwf_constructors``; ``mlwf_ui``;
``mlwf_stats_bridge``). Then it parses a one-task warm-up DAG (untimed: Airflow's lazy parts,
which a real child would load for each file, baseline and example alike) and pre-imports the
``airflow.*`` modules the file imports (as the manager does before it forks the child). Then it
times ``DagBag`` of the one file plus ``DagSerialization`` of its DAGs: the file's own cost, its
imports not already in the manager, building its DAGs, the cluster policies, serialization.
The mlwf modules present before the timed parse are recorded (``preloaded``).

Bytecode caches are used, as in an installed Airflow (``MLWF_BENCH_DAG_PARSE_BYTECODE=0``
measures without them): written under the run's temporary folder by the untimed first samples.

The baseline of each example file is a generated file defining DAGs of the same shape (the same
DAG ids, task ids and dependencies) made of ``EmptyOperator`` s, parsed the same way. Rounds are
paired (example, baseline) and alternate ABBA, each sample in a fresh interpreter, after one
untimed warm-up pair that also writes the ``.pyc`` files. The target (issue 10 item 14: <= 1.3x,
reported per file) is on each file's paired ratio: the median of its per-round ratios with a 95 %
bootstrap interval, estimate ``ratio_<file stem>``; ``ratio`` is the worst file's. The extra
milliseconds per parse and the CPU-time ratio are reported beside them. A missed target is
reported, not an error; a failed sanity check (import errors, another shape) exits non-zero.

A control comes last: ``hello_typed.py``, which imports nothing of mlwf, measured again with
mlwf-types' cluster policy unregistered in its samples (the one mlwf code its parse would run):
plain Airflow TaskFlow against the same ``EmptyOperator`` baseline (estimates
``*_control_hello_typed_without_mlwf``, no target). It tells how much of an example's ratio
Airflow costs by itself.

    uv run python benchmarks/dag_parse/run.py           # full run (10 rounds per file)
    uv run python benchmarks/dag_parse/run.py --quick   # smoke run (2 rounds per file; JSON in /tmp)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING or "--worker" not in sys.argv:
    # The driver only: a worker process stands for the DAG processor's parsing child, which holds
    # no benchmark machinery (mlwf_testsupport imports modules of its own).
    from mlwf_testsupport.benchmark import (
        SanityError,
        abba,
        environment,
        estimate,
        paired_ratio,
        write_result,
    )

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "examples" / "dags"
NAME = "dag_parse"
TARGET_RATIO = 1.3  # issue 10 item 14, per file
FULL_ROUNDS = int(os.environ.get("MLWF_BENCH_DAG_PARSE_ROUNDS", "10"))
QUICK_ROUNDS = 2
#: Bytecode caches, as an installed Airflow has them (pip compiles at install; Python writes them
#: on first import). Written under the run's temporary folder by the untimed first samples, so
#: that a ``PYTHONDONTWRITEBYTECODE=1`` in the caller's environment (as on the development
#: machines) does not turn every import into a compile. ``0`` measures without them.
BYTECODE = os.environ.get("MLWF_BENCH_DAG_PARSE_BYTECODE", "1") != "0"
WORKER_TIMEOUT_S = 300  # one fresh interpreter importing Airflow and parsing one file

WARMUP_DAG = '''"""Warm-up DAG (airflow dag): parsed untimed before the measured file."""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("mlwf_bench_warmup", schedule=None):
    EmptyOperator(task_id="t")
'''


#: Set in the control's workers: mlwf-types' cluster policy, the one mlwf code that runs while
#: a plain Airflow file is parsed, is unregistered (what a parse costs with Airflow alone).
WITHOUT_POLICY_ENV = "MLWF_BENCH_DAG_PARSE_WITHOUT_POLICY"
#: The control: an example with no mlwf import, measured again without mlwf-types' policy.
CONTROL_FILE = "hello_typed.py"
CONTROL_LABEL = "control_hello_typed_without_mlwf"

# ---------------------------------------------------------------------------------- worker


def _unregister_mlwf_policy() -> None:
    """Remove mlwf-types from the policy plugin manager DagBag calls (the control's samples)."""
    from airflow import settings

    pm = settings.get_policy_plugin_manager()
    plugin = pm.get_plugin("mlwf_types")
    if plugin is None:
        raise RuntimeError("no policy plugin named 'mlwf_types' to unregister")
    pm.unregister(plugin=plugin, name="mlwf_types")
    left = [impl.plugin_name for impl in pm.hook.dag_policy.get_hookimpls()]
    if any("mlwf" in name for name in left):
        raise RuntimeError(f"an mlwf dag_policy is still registered: {left}")


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


def _as_the_dag_processor_manager() -> None:
    """Import what ``airflow dag-processor`` holds when it forks a parsing child.

    The child is a bare ``os.fork()`` of the manager (``WatchedSubprocess.start``), so it starts
    with every module the manager imported: ``import airflow`` loads the cluster policies (the
    ``airflow.policy`` entry point: ``mlwf_types.policy`` and the ``mlwf_types`` package) and
    discovers the providers (``mlwf_operators``), and ``Job()`` loads the ``airflow.plugins``
    entry points through the listener manager (``mlwf_tuning``, which imports
    ``mlwf_constructors``, ``mlwf_ui``, ``mlwf_stats_bridge``). The same steps here, in the same
    order; the modules they bring are recorded in the result (``preloaded``).
    """
    import airflow.cli.commands.dag_processor_command  # noqa: F401  # the command's own imports
    from airflow.listeners.listener import get_listener_manager

    get_listener_manager()  # what Job.__init__ calls: loads the plugins


def worker(dag_file: str, warmup_dir: str, out: str) -> None:
    """One sample in a fresh interpreter: Airflow imported and warmed up, then the timed parse.

    The timed part is what the DAG processor's parsing child does with a file: ``DagBag`` of the
    one file (import, DAG construction, cluster policies), then ``DagSerialization`` of each DAG
    (Airflow's own ``_serialize_dags``). Before it, what the manager holds when it forks the
    child (:func:`_as_the_dag_processor_manager`), an untimed warm-up parse, and, as the manager
    does before it forks, the ``airflow.*`` modules the file imports are pre-imported.
    """
    import logging

    import airflow.sdk  # noqa: F401  # imported already in the DAG processor that parses files
    import structlog
    from airflow.dag_processing.dagbag import DagBag
    from airflow.dag_processing.processor import _pre_import_airflow_modules, _serialize_dags

    log = structlog.get_logger("dag_parse")
    _as_the_dag_processor_manager()
    if os.environ.get(WITHOUT_POLICY_ENV) == "1":
        _unregister_mlwf_policy()
    warm = DagBag(dag_folder=warmup_dir, safe_mode=False, load_op_links=False)
    _serialize_dags(warm, log)
    if warm.import_errors or list(warm.dags) != ["mlwf_bench_warmup"]:
        raise RuntimeError(f"warm-up parse failed: {warm.import_errors}")
    _pre_import_airflow_modules(dag_file, log)
    logging.disable(logging.CRITICAL)  # nothing to log in the timed parse; keep it out of it
    before = set(sys.modules)
    preloaded = sorted(m for m in before if m.startswith("mlwf_"))
    cpu_started = time.process_time()
    started = time.perf_counter()
    bag = DagBag(dag_folder=dag_file, safe_mode=False, load_op_links=False)
    serialized, serialization_errors = _serialize_dags(bag, log)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    if serialization_errors or len(serialized) != len(bag.dags):
        raise RuntimeError(f"{dag_file}: DAGs that do not serialize: {serialization_errors}")
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
                "mlwf_modules_imported": sorted(
                    m for m in set(sys.modules) - before if m.startswith("mlwf_")
                ),
                "preloaded": preloaded,
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
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if BYTECODE:
        env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
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


def _estimate(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "ratios"}


def _verdict(found: dict[str, Any]) -> str:
    low, high = found["ci95"]
    if high <= TARGET_RATIO:
        return "met"
    return "MISSED" if low > TARGET_RATIO else "not shown"


def measure(
    example: Path,
    rounds: int,
    tmp: Path,
    warmup_dir: Path,
    env: dict[str, str],
    label: str | None = None,
) -> dict[str, Any]:
    """Paired ABBA rounds of ``example`` and its EmptyOperator baseline: every sample kept.

    ``label`` names the measurement (default: the file's stem), e.g. the control's.
    """
    label = label or example.stem
    first = _sample(example, warmup_dir, tmp, env, f"{label}-shape")  # also writes the .pyc
    shape = first["shape"]
    baseline = tmp / "baselines" / f"{label}_baseline.py"
    baseline.parent.mkdir(exist_ok=True)
    baseline.write_text(baseline_source(example, shape), encoding="utf-8")
    base_first = _sample(baseline, warmup_dir, tmp, env, f"{label}-base-shape")
    if base_first["shape"] != shape:
        raise SanityError(
            f"the baseline of {example.name} has another shape: {base_first['shape']} != {shape}"
        )
    runs: dict[str, list[dict[str, Any]]] = {"candidate": [], "baseline": []}
    orders = abba(rounds)
    for r, order in enumerate(orders):
        for side in order:
            path = example if side == "candidate" else baseline
            result = _sample(path, warmup_dir, tmp, env, f"{label}-{r}-{side}")
            if result["shape"] != shape:
                raise SanityError(f"{path.name} parsed to another shape in round {r}")
            runs[side].append(result)
    wall = {k: [r["seconds"] for r in v] for k, v in runs.items()}
    cpu = {k: [r["cpu_seconds"] for r in v] for k, v in runs.items()}
    ratio = paired_ratio(wall["candidate"], wall["baseline"])
    cpu_ratio = paired_ratio(cpu["candidate"], cpu["baseline"])
    extra_ms = [1000 * (c - b) for c, b in zip(wall["candidate"], wall["baseline"], strict=True)]
    extra_cpu_ms = [1000 * (c - b) for c, b in zip(cpu["candidate"], cpu["baseline"], strict=True)]
    return {
        "file": f"examples/dags/{example.name}",
        "label": label,
        "dags": len(shape),
        "tasks": sum(len(d["tasks"]) for d in shape.values()),
        "shape": shape,
        "estimates": {
            "ratio": _estimate(ratio),
            "cpu_ratio": _estimate(cpu_ratio),
            "extra_ms": estimate(extra_ms),
            "extra_cpu_ms": estimate(extra_cpu_ms),
            "candidate_s": estimate(wall["candidate"]),
            "baseline_s": estimate(wall["baseline"]),
        },
        "samples": {
            "candidate_s": wall["candidate"],
            "baseline_s": wall["baseline"],
            "candidate_cpu_s": cpu["candidate"],
            "baseline_cpu_s": cpu["baseline"],
            "ratios": ratio["ratios"],
            "cpu_ratios": cpu_ratio["ratios"],
            "order": [list(o) for o in orders],
        },
        "modules_imported": {
            "candidate": runs["candidate"][0]["modules_imported"],
            "baseline": runs["baseline"][0]["modules_imported"],
        },
        "heavy_modules_imported": first["heavy_modules_imported"],
        "mlwf_modules_imported": first["mlwf_modules_imported"],
        "preloaded": first["preloaded"],
    }


def main(quick: bool) -> int:
    started_at = time.monotonic()
    env_before = environment(NAME)
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
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
                files.append(measure(example, rounds, tmp, warmup_dir, env))
            # The control: the same plain-Airflow file with no mlwf code in its parse. Its ratio
            # is what Airflow's TaskFlow costs against EmptyOperators by itself (no target).
            control = measure(EXAMPLES / CONTROL_FILE, rounds, tmp, warmup_dir,
                              {**env, WITHOUT_POLICY_ENV: "1"}, CONTROL_LABEL)  # fmt: skip
        except SanityError as exc:
            print(f"{NAME}: {exc}", file=sys.stderr)
            return 1
        except subprocess.TimeoutExpired as exc:
            print(f"{NAME}: a parse exceeded {exc.timeout} s", file=sys.stderr)
            return 1
    estimates: dict[str, dict[str, Any]] = {}
    for f in [*files, control]:
        stem = f["label"]
        for key, value in f["estimates"].items():
            if key not in ("candidate_s", "baseline_s"):
                estimates[f"{key}_{stem}"] = value
    worst = max(files, key=lambda f: f["estimates"]["ratio"]["value"])
    estimates["ratio"] = {**worst["estimates"]["ratio"], "file": worst["file"]}
    per_file = ", ".join(
        f"{Path(f['file']).stem} {f['estimates']['ratio']['value']:.2f}x "
        f"(CI {f['estimates']['ratio']['ci95'][0]:.2f}-{f['estimates']['ratio']['ci95'][1]:.2f}, "
        f"+{f['estimates']['extra_ms']['value']:.0f} ms): {_verdict(f['estimates']['ratio'])}"
        for f in files
    )
    c = control["estimates"]
    per_file += (
        f"; control {CONTROL_FILE} without mlwf's policy (plain Airflow) "
        f"{c['ratio']['value']:.2f}x (CI {c['ratio']['ci95'][0]:.2f}-{c['ratio']['ci95'][1]:.2f})"
    )
    write_result(
        NAME,
        description=(
            "per example DAG file: Airflow DagBag(safe_mode=False, load_op_links=False) of the one "
            "file plus DagSerialization of its DAGs (what the DAG processor's parsing child does), "
            "in a fresh interpreter that first imported what the dag-processor manager holds "
            "when it forks the parsing child (airflow with its cluster policies and providers, "
            "the dag-processor command, the airflow.plugins entry points as Job() loads them), "
            "parsed and serialized a warm-up DAG and pre-imported the airflow modules the file "
            "imports (as the manager does before it forks the child), with bytecode caches "
            "unless details.bytecode_cache is false, against a generated file of EmptyOperator DAGs of "
            "the same shape (DAG ids, task ids, edges); paired rounds in ABBA order after one "
            "untimed warm-up pair"
        ),
        estimates=estimates,
        headline="ratio",
        meaning=(
            "example file parse time / EmptyOperator baseline of the same shape, the median of the "
            "per-round ratios (wall clock); ratio_<file> per file, ratio the worst file's (target "
            "<= 1.3 per file); extra_ms_<file>: median of the paired differences in ms; lower is "
            "better; *_control_hello_typed_without_mlwf: hello_typed.py (no mlwf import) parsed "
            "with mlwf-types' cluster policy unregistered, i.e. plain Airflow, against the same "
            "baseline (no target: what TaskFlow costs by itself)"
        ),
        samples={f["label"]: f["samples"] for f in [*files, control]},
        details={
            "rounds": rounds,
            "quick": quick,
            "bytecode_cache": BYTECODE,
            "target_ratio": TARGET_RATIO,
            "worst_file": worst["file"],
            "files": [
                {k: v for k, v in f.items() if k not in ("estimates", "samples")} for f in files
            ],
            "control": {k: v for k, v in control.items() if k not in ("estimates", "samples")},
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"{NAME}: example DAG parse time / EmptyOperator DAGs of the same shape (median of "
            f"{rounds} paired rounds, 95% CI, target <= {TARGET_RATIO}x per file): {per_file}"
        ),
        # A smoke run checks the code, not the claim: its JSON stays out of benchmarks/results.
        **({"results": Path(tempfile.mkdtemp(prefix="mlwf-dag-parse-quick-"))} if quick else {}),
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_ROUNDS} rounds per file"
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("DAG_FILE", "WARMUP_DIR", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        sys.exit(0)
    sys.exit(main(args.quick))
