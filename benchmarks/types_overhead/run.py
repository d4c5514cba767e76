"""types_overhead: Airflow DagBag parse time with the mlwf-types cluster policy against without it.

Generates 200 DAG files of 57 typed tasks each (into a temp dir), then parses the folder with
Airflow's own ``DagBag`` in fresh subprocesses, alternating "with the policy" (as installed,
``[mlwf_types] mode = error``) and "without" (the ``mlwf_types`` plugin unregistered from
Airflow's policy plugin manager), and reports the median of each and their ratio.

Every measuring subprocess first parses a small sanity folder (untimed; it also warms imports):
a good DAG and a deliberately mismatched one. With the policy the mismatch must be refused and
the good DAG loaded; without it both must load. The timed parse must load every DAG with zero
import errors. A failed sanity check exits non-zero; missing the target does not (``pass``).

    uv run python benchmarks/types_overhead/run.py            # full run, writes the JSON
    uv run python benchmarks/types_overhead/run.py --quick    # smoke run (20 files, 2 rounds)
    uv run python benchmarks/types_overhead/run.py --profile  # cProfile one with-policy parse
"""

from __future__ import annotations

import argparse
import datetime
import json
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
RESULT = ROOT / "benchmarks" / "results" / "types_overhead.json"
NAME = "types_overhead"
TARGET_RATIO = 1.05
FULL = {"files": 200, "rounds": 7}
QUICK = {"files": 20, "rounds": 2}
WORKER_TIMEOUT_S = 900  # one parse of the whole folder; bounds every subprocess
POLICY_PLUGIN = "mlwf_types"  # the entry point's name: pluggy registers the module under it

sys.path.insert(0, str(HERE))
import _generate  # noqa: E402 (beside this file)


class SanityError(Exception):
    """The benchmark would measure the wrong thing."""


# ---------------------------------------------------------------------------------- worker


def _unregister_policy() -> None:
    """Remove mlwf-types from the policy plugin manager Airflow's DagBag calls."""
    from airflow import settings

    pm = settings.get_policy_plugin_manager()
    plugin = pm.get_plugin(POLICY_PLUGIN)
    if plugin is None:
        raise SanityError(f"no policy plugin named {POLICY_PLUGIN!r} to unregister")
    pm.unregister(plugin=plugin, name=POLICY_PLUGIN)


def _policy_registered() -> bool:
    from airflow import settings

    pm = settings.get_policy_plugin_manager()
    return any(
        getattr(impl.plugin, "__name__", "") == "mlwf_types.policy"
        for impl in pm.hook.dag_policy.get_hookimpls()
    )


def _guarded_tasks(bag: Any) -> int:
    """How many TaskFlow tasks run guarded: the policy wraps their operator class once, so all or 0."""
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

    if not getattr(_PythonDecoratedOperator.execute_callable, "__mlwf_types_guard__", False):
        return 0
    return sum(
        1
        for dag in bag.dags.values()
        for task in dag.tasks
        if isinstance(task, _PythonDecoratedOperator)
    )


def _parse(folder: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=folder, safe_mode=False, load_op_links=False)


def _install_timers() -> dict[str, list[Any]]:
    """Diagnostics only (--profile): time Airflow's dag_policy call, check_dag, and GC, per call."""
    import gc

    from airflow import settings

    timers: dict[str, list[Any]] = {"dag_policy": [0, 0.0], "check_dag": [0, 0.0], "gc": [0, 0.0]}

    def timed(name: str, func: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                timers[name][0] += 1
                timers[name][1] += time.perf_counter() - t0

        return wrapper

    settings.dag_policy = timed("dag_policy", settings.dag_policy)  # what DagBag.bag_dag calls
    import mlwf_types  # the policy looks mlwf_types.check_dag up on every call

    mlwf_types.check_dag = timed("check_dag", mlwf_types.check_dag)
    gc_start = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            timers["gc"][0] += 1
            timers["gc"][1] += time.perf_counter() - gc_start[0]

    gc.callbacks.append(on_gc)
    return timers


def worker(
    mode: str, dag_dir: str, sanity_dir: str, out: str, profile: str | None, time_hooks: bool
) -> None:
    """One measurement in a fresh interpreter: sanity parse (untimed), then the timed parse."""
    import logging

    import airflow  # noqa: F401 (initializes settings and loads the policy plugins)

    if mode == "without":
        _unregister_policy()
    registered = _policy_registered()

    started = time.perf_counter()
    sanity = _parse(sanity_dir)
    sanity_s = time.perf_counter() - started
    sanity_errors = {Path(k).name: v for k, v in sanity.import_errors.items()}

    logging.disable(logging.CRITICAL)  # nothing to log in the timed parse; keep it out of it
    timers = _install_timers() if time_hooks else None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        bag = _parse(dag_dir)
        profiler.disable()
        seconds = time.perf_counter() - started
        cpu_seconds = seconds
        profiler.dump_stats(profile)
    else:
        cpu_started = time.process_time()
        started = time.perf_counter()
        bag = _parse(dag_dir)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started

    extra: dict[str, Any] = {}
    if timers is not None:
        extra["timers"] = {
            k: {"calls": v[0], "total_s": v[1], "per_call_ms": 1000 * v[1] / max(v[0], 1)}
            for k, v in timers.items()
        }

    Path(out).write_text(
        json.dumps(
            {
                "mode": mode,
                "policy_registered": registered,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "dags": len(bag.dags),
                "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                "import_errors": {Path(k).name: v for k, v in bag.import_errors.items()},
                "guarded_tasks": _guarded_tasks(bag),
                "sanity_s": sanity_s,
                "sanity_dags": sorted(sanity.dags),
                "sanity_errors": sanity_errors,
                **extra,
            }
        ),
        encoding="utf-8",
    )


# ---------------------------------------------------------------------------------- driver


def _environment(tmp: Path, dag_dir: Path, helper_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    home = tmp / "airflow_home"
    home.mkdir(exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dag_dir),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",  # no SIGALRM per file; nothing to bound here
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__MLWF_TYPES__MODE": "error",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(helper_dir), env.get("PYTHONPATH")])),
        }
    )
    env.pop("AIRFLOW_CONFIG", None)
    return env


def _run_worker(
    mode: str,
    tmp: Path,
    dag_dir: Path,
    sanity_dir: Path,
    env: dict[str, str],
    tag: str,
    profile: Path | None = None,
    time_hooks: bool = False,
) -> dict[str, Any]:
    out = tmp / f"result-{tag}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        mode,
        str(dag_dir),
        str(sanity_dir),
        str(out),
    ]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    if time_hooks:
        cmd += ["--time-hooks"]
    proc = subprocess.run(
        cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S
    )
    if proc.returncode != 0 or not out.is_file():
        raise SanityError(f"{mode} worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["stderr_tail"] = proc.stderr[-2000:]
    return result


def _check(result: dict[str, Any], files: int, tasks_per_file: int) -> None:
    """Raise SanityError unless this run measured what it claims to."""
    mode = result["mode"]
    problems = []
    if result["policy_registered"] != (mode == "with"):
        problems.append(f"policy registered={result['policy_registered']}")
    refused = "mismatch.py" in result["sanity_errors"]
    if mode == "with" and not (
        refused and "mlwf-types found" in result["sanity_errors"]["mismatch.py"]
    ):
        problems.append(f"mismatched DAG not refused by mlwf-types: {result['sanity_errors']}")
    if mode == "without" and result["sanity_errors"]:
        problems.append(f"sanity DAGs refused without the policy: {result['sanity_errors']}")
    expected_sanity = ["mlwf_bench_sanity_good"] + (
        [] if mode == "with" else ["mlwf_bench_mismatch"]
    )
    if result["sanity_dags"] != sorted(expected_sanity):
        problems.append(f"sanity DAGs loaded: {result['sanity_dags']}")
    if result["import_errors"]:
        first = next(iter(result["import_errors"].items()))
        problems.append(f"{len(result['import_errors'])} import errors, first: {first}")
    if result["dags"] != files or result["tasks"] != files * tasks_per_file:
        problems.append(f"loaded {result['dags']} DAGs / {result['tasks']} tasks")
    if (result["guarded_tasks"] > 0) != (mode == "with"):
        problems.append(f"{result['guarded_tasks']} TaskFlow tasks guarded by the policy")
    if problems:
        raise SanityError(f"sanity check failed ({mode} the policy): " + "; ".join(problems))


def _mlwf_functions(profile: Path, top: int) -> str:
    import io
    import pstats

    stream = io.StringIO()
    stats = pstats.Stats(str(profile), stream=stream)
    stats.sort_stats("cumulative").print_stats(r"mlwf_types", top)
    stats.sort_stats("tottime").print_stats(r"mlwf_types|beartype|typing\.py|inspect\.py", top)
    return stream.getvalue()


def profile_main(files: int) -> int:
    """cProfile one with-policy parse; print mlwf_types' top functions and check_dag per DAG."""
    with tempfile.TemporaryDirectory(prefix="mlwf-types-overhead-") as name:
        tmp = Path(name)
        dag_dir, helper_dir, sanity_dir = tmp / "dags", tmp / "helpers", tmp / "sanity"
        _generate.write_dags(dag_dir, helper_dir, files)
        _generate.write_sanity_dags(sanity_dir)
        env = _environment(tmp, dag_dir, helper_dir)
        _run_worker("without", tmp, dag_dir, sanity_dir, env, "compile")  # write the .pyc files
        for mode in ("without", "with"):  # unprofiled, with per-call timers on the hooks
            timed = _run_worker(
                mode, tmp, dag_dir, sanity_dir, env, f"timed-{mode}", time_hooks=True
            )
            _check(timed, files, _generate.TASKS_PER_DAG)
            t = timed["timers"]
            print(
                f"{mode:>7} the policy: parse {timed['seconds']:.2f} s wall, {timed['cpu_seconds']:.2f} s CPU; "
                f"settings.dag_policy {t['dag_policy']['per_call_ms']:.2f} ms/DAG "
                f"({t['dag_policy']['total_s']:.2f} s), check_dag {t['check_dag']['per_call_ms']:.2f} ms/DAG; "
                f"GC {t['gc']['calls']} collections, {t['gc']['total_s']:.2f} s"
            )
        prof = tmp / "with.prof"
        result = _run_worker("with", tmp, dag_dir, sanity_dir, env, "profile", profile=prof)
        _check(result, files, _generate.TASKS_PER_DAG)
        print(
            f"profiled with-policy parse of {files} files: {result['seconds']:.2f} s (under cProfile)"
        )
        print(_mlwf_functions(prof, 25))
        out = os.environ.get("MLWF_TYPES_OVERHEAD_PROFILE")
        if out:
            Path(out).write_bytes(prof.read_bytes())
    return 0


def main(quick: bool) -> int:
    config = QUICK if quick else FULL
    files, rounds = config["files"], config["rounds"]
    tasks_per_file = _generate.TASKS_PER_DAG
    per_round: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    cold: dict[str, list[float]] = {"with": [], "without": []}
    with tempfile.TemporaryDirectory(prefix="mlwf-types-overhead-") as name:
        tmp = Path(name)
        dag_dir, helper_dir, sanity_dir = tmp / "dags", tmp / "helpers", tmp / "sanity"
        _generate.write_dags(dag_dir, helper_dir, files)
        _generate.write_sanity_dags(sanity_dir)
        env = _environment(tmp, dag_dir, helper_dir)
        try:
            # Warm-up round (untimed): compiles every DAG file to .pyc and warms the OS file cache.
            for mode in ("with", "without"):
                _check(
                    _run_worker(mode, tmp, dag_dir, sanity_dir, env, f"warmup-{mode}"),
                    files,
                    tasks_per_file,
                )
            # Interleaved ABBA rounds, each measurement in a fresh interpreter, to cancel drift.
            for r in range(rounds):
                order = ("with", "without") if r % 2 == 0 else ("without", "with")
                for mode in order:
                    result = _run_worker(mode, tmp, dag_dir, sanity_dir, env, f"{r}-{mode}")
                    _check(result, files, tasks_per_file)
                    per_round[mode].append(round(result["seconds"], 4))
                    cpu[mode].append(round(result["cpu_seconds"], 4))
                    cold[mode].append(round(result["sanity_s"], 4))
        except SanityError as exc:
            print(f"types_overhead: {exc}", file=sys.stderr)
            return 1
        except subprocess.TimeoutExpired as exc:
            print(f"types_overhead: a parse exceeded {exc.timeout} s", file=sys.stderr)
            return 1

    with_s = statistics.median(per_round["with"])
    without_s = statistics.median(per_round["without"])
    ratio = with_s / without_s
    cpu_with_s = statistics.median(cpu["with"])
    cpu_without_s = statistics.median(cpu["without"])
    environment = {
        "python": platform.python_version(),
        "apache-airflow": version("apache-airflow"),
        "mlwf-types": version("mlwf-types"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    report = {
        "benchmark": NAME,
        "description": (
            f"Airflow DagBag(safe_mode=False, load_op_links=False) parse of {files} generated DAG "
            f"files x {tasks_per_file} typed tasks, with the mlwf-types cluster policy (mode=error: "
            "check_dag + run-time guards) against the same parse with the policy plugin "
            "unregistered from Airflow's policy plugin manager; each parse in a fresh interpreter "
            "after an untimed sanity parse, rounds interleaved ABBA after one untimed warm-up round"
        ),
        "measurements": {
            "candidate_s": round(with_s, 4),
            "baseline_s": round(without_s, 4),
            "repetitions": rounds,
            "statistic": "median",
        },
        "ratio": round(ratio, 4),
        "ratio_meaning": "parse time with the policy / without it; lower is better",
        "target_ratio": TARGET_RATIO,
        "pass": ratio <= TARGET_RATIO,
        "quick": quick,
        "files": files,
        "tasks_per_file": tasks_per_file,
        "total_tasks": files * tasks_per_file,
        "rounds": rounds,
        "per_round_s": {"with_policy": per_round["with"], "without_policy": per_round["without"]},
        "median_with_policy_s": round(with_s, 4),
        "median_without_policy_s": round(without_s, 4),
        "cpu_time": {
            "note": "process CPU time of the same parses (less sensitive to other load on the "
            "machine than wall-clock time); the ratio above and pass use wall-clock medians",
            "per_round_s": {"with_policy": cpu["with"], "without_policy": cpu["without"]},
            "median_with_policy_s": round(cpu_with_s, 4),
            "median_without_policy_s": round(cpu_without_s, 4),
            "ratio": round(cpu_with_s / cpu_without_s, 4),
        },
        "sanity_parse_s": {
            "note": "first parse in each interpreter (2 DAGs, one refused with the policy): "
            "includes first-use imports; not part of the ratio",
            "with_policy": cold["with"],
            "without_policy": cold["without"],
        },
        "environment": environment,
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    verdict = "pass" if report["pass"] else "FAIL"
    print(
        f"types_overhead: {files} DAGs x {tasks_per_file} typed tasks parsed in {with_s:.2f} s with "
        f"the mlwf-types policy vs {without_s:.2f} s without, ratio {ratio:.3f} "
        f"(target <= {TARGET_RATIO}: {verdict}; median of {rounds}; CPU-time ratio "
        f"{cpu_with_s / cpu_without_s:.3f})"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 files, 2 rounds")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one with-policy parse (no JSON written)"
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("MODE", "DAGS", "SANITY", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--time-hooks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, profile=args.profile_out, time_hooks=args.time_hooks)
        sys.exit(0)
    if args.profile:
        sys.exit(profile_main(QUICK["files"] if args.quick else FULL["files"]))
    sys.exit(main(args.quick))
