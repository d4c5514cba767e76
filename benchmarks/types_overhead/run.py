"""types_overhead: Airflow DagBag parse time with the mlwf-types cluster policy against without it.

Generates 200 DAG files of 57 typed tasks each (into a temp dir), then parses the folder with
Airflow's own ``DagBag`` in fresh subprocesses, alternating "with the policy" (as installed,
``[mlwf_types] mode = error``) and "without" (the ``mlwf_types`` plugin unregistered from
Airflow's policy plugin manager), in paired rounds in ABBA order (16 by default;
``MLWF_BENCH_TYPES_OVERHEAD_ROUNDS``), and reports the median of the per-round ratios with its
95 % bootstrap interval (target: its upper end <= 1.05, issue 15). Every round is kept in the JSON.

Every measuring subprocess first parses a small sanity folder (untimed; it also warms imports):
a good DAG and a deliberately mismatched one. With the policy the mismatch must be refused and
the good DAG loaded; without it both must load. The timed parse must load every DAG with zero
import errors. A failed sanity check exits non-zero; missing the target does not (the check in
``benchmark.py check types_overhead`` reports it).

    uv run python benchmarks/types_overhead/run.py            # full run, writes the JSON
    uv run python benchmarks/types_overhead/run.py --quick    # smoke run (20 files, 4 rounds; JSON in /tmp)
    uv run python benchmarks/types_overhead/run.py --profile  # cProfile one with-policy parse
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
from typing import Any

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
NAME = "types_overhead"
TARGET_RATIO = 1.05  # issue 15: the upper end of the paired ratio's 95 % interval
FULL = {"files": 200}
ROUNDS = int(os.environ.get("MLWF_BENCH_TYPES_OVERHEAD_ROUNDS", "16"))
QUICK = {"files": 20, "rounds": 4}
WORKER_TIMEOUT_S = 900  # one parse of the whole folder; bounds every subprocess
POLICY_PLUGIN = "mlwf_types"  # the entry point's name: pluggy registers the module under it

sys.path.insert(0, str(HERE))
import _generate  # noqa: E402 (beside this file)

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
    started_at = time.monotonic()
    env_before = environment(NAME)
    files = QUICK["files"] if quick else FULL["files"]
    rounds = QUICK["rounds"] if quick else ROUNDS
    tasks_per_file = _generate.TASKS_PER_DAG
    orders = abba(rounds)
    samples: dict[str, list[float]] = {
        key: [] for key in ("candidate_s", "baseline_s", "candidate_cpu_s", "baseline_cpu_s",
                            "candidate_sanity_s", "baseline_sanity_s")
    }  # fmt: skip
    mode_of = {"candidate": "with", "baseline": "without"}
    with tempfile.TemporaryDirectory(prefix="mlwf-types-overhead-") as name:
        tmp = Path(name)
        dag_dir, helper_dir, sanity_dir = tmp / "dags", tmp / "helpers", tmp / "sanity"
        _generate.write_dags(dag_dir, helper_dir, files)
        _generate.write_sanity_dags(sanity_dir)
        env = _environment(tmp, dag_dir, helper_dir)
        try:
            # Warm-up (untimed): compiles every DAG file to .pyc and warms the OS file cache.
            for mode in ("with", "without"):
                _check(
                    _run_worker(mode, tmp, dag_dir, sanity_dir, env, f"warmup-{mode}"),
                    files,
                    tasks_per_file,
                )
            # Paired ABBA rounds, each parse in a fresh interpreter.
            for r, order in enumerate(orders):
                for side in order:
                    mode = mode_of[side]
                    result = _run_worker(mode, tmp, dag_dir, sanity_dir, env, f"{r}-{mode}")
                    _check(result, files, tasks_per_file)
                    samples[f"{side}_s"].append(result["seconds"])
                    samples[f"{side}_cpu_s"].append(result["cpu_seconds"])
                    samples[f"{side}_sanity_s"].append(result["sanity_s"])
        except SanityError as exc:
            print(f"{NAME}: {exc}", file=sys.stderr)
            return 1
        except subprocess.TimeoutExpired as exc:
            print(f"{NAME}: a parse exceeded {exc.timeout} s", file=sys.stderr)
            return 1

    ratio = paired_ratio(samples["candidate_s"], samples["baseline_s"])
    cpu_ratio = paired_ratio(samples["candidate_cpu_s"], samples["baseline_cpu_s"])
    estimates = {
        "ratio": {k: v for k, v in ratio.items() if k != "ratios"},
        "cpu_ratio": {k: v for k, v in cpu_ratio.items() if k != "ratios"},
        "candidate_s": estimate(samples["candidate_s"]),
        "baseline_s": estimate(samples["baseline_s"]),
    }
    low, high = ratio["ci95"]
    if high <= TARGET_RATIO:
        verdict = "met"
    elif low > TARGET_RATIO:
        verdict = "MISSED"
    else:
        verdict = "not shown"
    write_result(
        NAME,
        description=(
            f"Airflow DagBag(safe_mode=False, load_op_links=False) parse of {files} generated DAG "
            f"files x {tasks_per_file} typed tasks, with the mlwf-types cluster policy (mode=error: "
            "check_dag + run-time guards) against the same parse with the policy plugin "
            "unregistered from Airflow's policy plugin manager; each parse in a fresh interpreter "
            "after an untimed sanity parse (a good and a mismatched DAG); paired rounds in ABBA "
            "order after one untimed warm-up pair"
        ),
        estimates=estimates,
        headline="ratio",
        meaning=(
            "parse time with the policy / without it, the median of the per-round ratios (wall "
            "clock); lower is better"
        ),
        samples={
            **samples,
            "ratios": ratio["ratios"],
            "cpu_ratios": cpu_ratio["ratios"],
            "order": [list(o) for o in orders],
        },
        details={
            "files": files,
            "tasks_per_file": tasks_per_file,
            "total_tasks": files * tasks_per_file,
            "rounds": rounds,
            "quick": quick,
            "target_ratio": TARGET_RATIO,
            "sanity_s_note": (
                "first parse in each interpreter (2 DAGs, one refused with the policy): includes "
                "first-use imports; not part of the ratio"
            ),
            "cpu_ratio_note": "the same parses in process CPU time, for context",
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"{NAME}: {files} DAGs x {tasks_per_file} typed tasks parse "
            f"{ratio['value']:.3f}x as long with the mlwf-types policy as without "
            f"(95% CI {low:.3f}-{high:.3f}, target <= {TARGET_RATIO}: {verdict}; median of "
            f"{rounds} paired rounds; medians {estimates['candidate_s']['value']:.2f} s vs "
            f"{estimates['baseline_s']['value']:.2f} s; CPU-time ratio {cpu_ratio['value']:.3f})"
        ),
        # A smoke run checks the code, not the claim: its JSON stays out of benchmarks/results.
        **(
            {"results": Path(tempfile.mkdtemp(prefix="mlwf-types-overhead-quick-"))}
            if quick
            else {}
        ),
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 files, 4 rounds, JSON in /tmp"
    )
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
