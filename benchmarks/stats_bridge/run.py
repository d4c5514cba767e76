"""stats_bridge: mlwf-stats-bridge in multiprocess mode vs Airflow's StatsD client sending UDP.

Three processes besides this one, each started by it:

- **candidate:** a worker (``worker.py``) configured exactly as an mlwf instance configures it:
  the ``[metrics]`` options and ``PROMETHEUS_MULTIPROC_DIR`` come from mlwf-stats-bridge's own
  ``instance_defaults`` (what ``mlwf up`` applies), so prometheus_client runs in multiprocess
  mode and every value goes to the process's mmap'ed files;
- **baseline:** the same worker with ``[metrics] statsd_on`` only: Airflow's stock
  ``statsd.StatsClient`` sending UDP to
- **the listener** (``listener.py``), a statsd_exporter stand-in in its own process (Debian has
  no statsd_exporter package): it receives and parses every line.

Both workers initialize Airflow's metrics as its task runner does (``stats.initialize`` with the
configured factory) and emit ``ti.finish`` (incr), ``task.duration`` (timing) and
``pool.open_slots`` (gauge) with tags; with ``legacy_names_on`` each reaches the client twice.
After a warm-up round per side, ROUNDS paired rounds in ABBA order time, per kind, 20,000 calls:

- ``ratio`` (the target): the client's per-call time, candidate / baseline, summed over the three
  kinds (the client calls Airflow's ``SafeStatsdLogger`` makes for one ``stats`` call, replayed
  on the client);
- ``ratio_airflow`` (no target): the whole ``stats.<kind>(..., tags=...)`` call as a task pays
  it, Airflow's own name handling included;
- ``ratio_net_of_harness`` (no target): ``ratio`` after taking from each side's client time
  what the same replay costs on a client that does nothing (``harness``): the replay is in both
  sides' client time, so ``ratio`` leans towards 1, i.e. against the candidate.

Then a burst of 500,000 ``stats.incr`` calls (1,000,000 client increments) from 4 threads per
side: how many the bridge's files hold against how many lines the listener received. Sanity
checks (the run fails): the candidate's multiprocess files hold exactly every increment and
timing the candidate made; the listener parsed no malformed line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from mlwf_stats_bridge import exposition
from mlwf_stats_bridge.instance_defaults import instance_defaults
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("MLWF_BENCH_STATS_BRIDGE_ROUNDS", "30"))
CALLS = 20_000
BURST = 500_000
THREADS = 4
KINDS = ("incr", "timing", "gauge")
LAYERS = ("client", "airflow")


def _airflow_env(options: dict[str, dict[str, str]]) -> dict[str, str]:
    return {
        f"AIRFLOW__{section.upper()}__{key.upper()}": value
        for section, values in options.items()
        for key, value in values.items()
    }


class Worker:
    """One side's worker process, driven by JSON lines."""

    def __init__(self, side: str, env: dict[str, str], log: Path) -> None:
        self.side = side
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            text=True,
        )
        self.hello = self._answer()

    def _answer(self) -> dict[str, Any]:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        while line := stdout.readline():
            if line.startswith("{"):  # Airflow logs to stdout too
                answer: dict[str, Any] = json.loads(line)
                return answer
        raise SystemExit(
            f"the {self.side} worker died (exit {self.process.wait()}): see {self.log.name}"
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.log.close()


class Listener:
    """The listener process: counts and parses received StatsD lines."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "listener.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def count(self) -> tuple[int, int]:
        """Lines parsed and malformed lines so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        lines, malformed, _ = self.process.stdout.readline().split()
        return int(lines), int(malformed)

    def drained(self) -> tuple[int, int]:
        """The counts once nothing more arrives for a second (bounded: 30 s)."""
        last = self.count()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.count()
            if now == last:
                break
            last = now
        return last

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("exit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise SystemExit(f"the candidate's multiprocess files have no {name}{labels}")


def main() -> None:
    started_at = time.monotonic()
    env_before = environment("stats_bridge")
    orders = abba(ROUNDS)
    work = Path(tempfile.mkdtemp(prefix="mlwf-bench-stats-bridge-"))
    metrics_dir = work / "metrics"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    base.pop("PROMETHEUS_MULTIPROC_DIR", None)
    base.update(
        {
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    # What an mlwf instance with metrics enabled sets (mlwf-instance applies these defaults).
    deployed = instance_defaults(
        SimpleNamespace(metrics_enabled=True, team=False, metrics_dir=metrics_dir)
    )
    candidate_env = {**base, **_airflow_env(deployed["airflow_config"]), **deployed["environment"]}
    listener = Listener()
    baseline_env = {
        **base,
        **_airflow_env(
            {
                "metrics": {
                    "statsd_on": "True",
                    "statsd_host": "127.0.0.1",
                    "statsd_port": str(listener.port),
                }
            }
        ),
    }
    workers = {
        "candidate": Worker("candidate", candidate_env, work / "candidate.log"),
        "baseline": Worker("baseline", baseline_env, work / "baseline.log"),
    }
    try:
        hello = {side: worker.hello for side, worker in workers.items()}
        if hello["candidate"]["client"] != "mlwf_stats_bridge._client.PrometheusStatsClient":
            raise SystemExit(f"the candidate runs {hello['candidate']['client']}")
        if hello["candidate"]["multiprocess_dir"] != str(metrics_dir):
            raise SystemExit(f"the candidate is not in multiprocess mode: {hello['candidate']}")
        if hello["baseline"]["client"] != "statsd.client.udp.StatsClient":
            raise SystemExit(f"the baseline runs {hello['baseline']['client']}")
        # Airflow emits a line of its own at start (serde.load_serializers): not the rounds'.
        lines_before = listener.drained()[0]
        rounds_run = 0
        for side in ("candidate", "baseline"):  # warm-up
            workers[side].ask(cmd="round", calls=CALLS)
        rounds_run += 1
        samples: dict[str, list[float]] = {}
        for order in orders:
            for side in order:
                answer = workers[side].ask(cmd="round", calls=CALLS)
                for key, seconds in answer.items():
                    samples.setdefault(f"{side}_{key}_us", []).append(seconds * 1e6)
                for layer in (*LAYERS, "harness"):
                    total = sum(answer[f"{layer}_{kind}"] for kind in KINDS) * 1e6
                    samples.setdefault(f"{side}_{layer}_us", []).append(total)
                net = samples[f"{side}_client_us"][-1] - samples[f"{side}_harness_us"][-1]
                samples.setdefault(f"{side}_net_us", []).append(net)
        rounds_run += ROUNDS
        sent_lines = (
            rounds_run
            * CALLS
            * sum(hello["baseline"]["client_calls_per_stats_call"][kind] for kind in KINDS)
            * len(LAYERS)
        )
        received, malformed = listener.drained()
        received_lines = received - lines_before
        burst = {side: workers[side].ask(cmd="burst", calls=BURST, threads=THREADS)
                 for side in ("baseline",)}  # fmt: skip
        burst_received = listener.drained()[0] - received
        burst.update(candidate=workers["candidate"].ask(cmd="burst", calls=BURST, threads=THREADS))
    finally:
        for worker in workers.values():
            worker.close()
        listener.close()
    if malformed:
        raise SystemExit(f"the listener parsed {malformed} malformed lines")
    client_increments_per_call = hello["baseline"]["client_calls_per_stats_call"]["incr"]
    burst_lines = burst["baseline"]["calls"] * client_increments_per_call
    if received_lines > sent_lines or burst_received > burst_lines:
        raise SystemExit(
            f"the listener received more than the baseline sent: {received_lines} of "
            f"{sent_lines} lines in the rounds, {burst_received} of {burst_lines} in the burst"
        )
    # The candidate's files, merged as a scrape does, hold every call it made.
    text = exposition(metrics_dir).decode()
    labels = {"dag_id": "bench", "task_id": "t"}
    made = rounds_run * CALLS * len(LAYERS)
    increments = _sample(text, "airflow_ti_finish_total", {**labels, "state": "success"})
    timings = _sample(text, "airflow_task_duration_seconds_count", labels)
    burst_recorded = increments - made
    if burst_recorded != burst["candidate"]["calls"] or timings != made:
        raise SystemExit(
            f"the candidate's files hold {increments:.0f} increments and {timings:.0f} timings; "
            f"it made {made + burst['candidate']['calls']} and {made}"
        )

    estimates: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {}
    for name, key in (("ratio", "client"), ("ratio_airflow", "airflow"),
                      ("ratio_net_of_harness", "net"),
                      *((f"ratio_{kind}", f"client_{kind}") for kind in KINDS)):  # fmt: skip
        paired = paired_ratio(samples[f"candidate_{key}_us"], samples[f"baseline_{key}_us"])
        ratios[name] = paired.pop("ratios")
        estimates[name] = paired
    for side in ("candidate", "baseline"):
        for layer in (*LAYERS, "harness"):
            estimates[f"{side}_{layer}_us"] = estimate(samples[f"{side}_{layer}_us"])
    r, ra = estimates["ratio"], estimates["ratio_airflow"]
    c, b = estimates["candidate_client_us"], estimates["baseline_client_us"]
    verdict = "met" if r["ci95"][1] <= 0.3 else ("missed" if r["ci95"][0] > 0.3 else "not shown")
    write_result(
        "stats_bridge",
        description=(
            "Airflow metrics emitted as its task runner does (stats.initialize with the configured "
            "factory; ti.finish incr, task.duration timing, pool.open_slots gauge, with tags and "
            "legacy names): mlwf-stats-bridge configured by its instance_defaults (multiprocess "
            "mode, PROMETHEUS_MULTIPROC_DIR) vs Airflow's stock statsd.StatsClient sending UDP to a "
            "listener process that parses every line (statsd_exporter stand-in); each side in its "
            f"own worker process; {ROUNDS} ABBA rounds of {CALLS:,} calls per kind after a warm-up; "
            f"then a burst of {BURST:,} stats.incr calls from {THREADS} threads per side"
        ),
        estimates=estimates,
        headline="ratio",
        meaning=(
            "candidate / baseline per-call time of the client (the calls Airflow makes on it for "
            "one stats call, summed over incr, timing, gauge); lower is better. ratio_airflow: the "
            "same for the whole stats.<kind>() call, Airflow's name handling included (no target). "
            "ratio_net_of_harness: ratio without the replay's own cost (no target)"
        ),
        samples={**samples, "ratios": ratios, "order": [list(o) for o in orders]},
        details={
            "rounds": ROUNDS,
            "calls_per_kind_per_round": CALLS,
            "workers": hello,
            "deployed_config": deployed,
            "listener": "benchmarks/stats_bridge/listener.py (Debian has no statsd_exporter)",
            "baseline_lines_sent_in_rounds": sent_lines,
            "baseline_lines_received_in_rounds": received_lines,
            "burst": {
                "stats_incr_calls": burst["baseline"]["calls"],
                "threads": THREADS,
                "client_increments": burst_lines,
                "candidate_recorded": burst_recorded,
                "candidate_lost": burst["candidate"]["calls"] - burst_recorded,
                "candidate_s": burst["candidate"]["seconds"],
                "baseline_lines_received": burst_received,
                "baseline_lines_lost": burst_lines - burst_received,
                "baseline_s": burst["baseline"]["seconds"],
            },
            "candidate_files_hold": {
                "ti_finish_success": increments,
                "task_duration_count": timings,
            },
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"stats_bridge: client time of an incr, a timing and a gauge, multiprocess mode "
            f"{c['value']:.1f} us vs UDP {b['value']:.1f} us: {r['value']:.2f}x (95% CI {r['ci95'][0]:.2f}-"
            f"{r['ci95'][1]:.2f}, target 0.3: {verdict}); whole Airflow calls {ra['value']:.2f}x "
            f"(CI {ra['ci95'][0]:.2f}-{ra['ci95'][1]:.2f}); burst of {burst_lines:,} increments: "
            f"bridge lost {burst['candidate']['calls'] - burst_recorded:,.0f}, UDP lost {burst_lines - burst_received:,}"
        ),
    )


if __name__ == "__main__":
    main()
