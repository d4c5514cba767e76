"""mlwf-stats-bridge vs the stock statsd.StatsClient sending UDP to a local listener (same run).

1. Per-call cost of incr and timing (median of repetitions of 20,000-call batches).
2. A burst of 1,000,000 increments from 4 threads: increments lost by the bridge vs datagrams
   received by a local UDP listener from the stock client.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import threading
import time
from importlib.metadata import version
from pathlib import Path

from mlwf_stats_bridge import PrometheusStatsClient
from prometheus_client import CollectorRegistry
from statsd import StatsClient

CALLS = 20_000
REPS = 15
BURST = 1_000_000
THREADS = 4
RESULT = Path(__file__).resolve().parents[1] / "results" / "stats_bridge.json"


class Listener:
    """A UDP listener on loopback counting received StatsD lines."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.lines = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines += data.count(b"\n") + 1

    def drain(self) -> int:
        last = -1
        while last != self.lines:  # until nothing arrives for a second
            last = self.lines
            time.sleep(1.0)
        return self.lines


def per_call(fn) -> float:  # type: ignore[no-untyped-def]
    for _ in range(2000):
        fn()
    samples = []
    for _ in range(REPS):
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        samples.append((time.perf_counter() - start) / CALLS)
    return statistics.median(samples)


def burst(client: StatsClient) -> float:
    per_thread = BURST // THREADS

    def work() -> None:
        incr = client.incr
        for _ in range(per_thread):
            incr("ti.finish.bench.t.success")

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    listener = Listener()
    stock = StatsClient("127.0.0.1", listener.port, "airflow")
    bridge = PrometheusStatsClient(
        "127.0.0.1", listener.port, "airflow", False, registry=CollectorRegistry()
    )

    stock_incr = per_call(lambda: stock.incr("ti.finish.bench.t.success"))
    bridge_incr = per_call(lambda: bridge.incr("ti.finish.bench.t.success"))
    stock_timing = per_call(lambda: stock.timing("dag.bench.t.duration", 12.5))
    bridge_timing = per_call(lambda: bridge.timing("dag.bench.t.duration", 12.5))

    listener.drain()
    before = listener.lines
    stock_burst_s = burst(stock)
    received = listener.drain() - before
    sample = {"dag_id": "bench", "task_id": "t", "state": "success"}
    before_bridge = bridge.registry.get_sample_value("airflow_ti_finish_total", sample) or 0
    bridge_burst_s = burst(bridge)
    recorded = bridge.registry.get_sample_value("airflow_ti_finish_total", sample) - before_bridge
    sent = (BURST // THREADS) * THREADS

    ratio = (bridge_incr + bridge_timing) / (stock_incr + stock_timing)
    result = {
        "benchmark": "stats_bridge",
        "description": "mlwf-stats-bridge PrometheusStatsClient vs stock statsd.StatsClient sending UDP "
        "to a loopback listener: per-call cost of incr and timing; a 1,000,000-increment burst "
        "from 4 threads and how many increments each side loses",
        "measurements": {
            "candidate_incr_s": bridge_incr,
            "baseline_incr_s": stock_incr,
            "candidate_timing_s": bridge_timing,
            "baseline_timing_s": stock_timing,
            "incr_ratio": bridge_incr / stock_incr,
            "timing_ratio": bridge_timing / stock_timing,
            "calls_per_repetition": CALLS,
            "repetitions": REPS,
            "statistic": "median",
            "burst_increments": sent,
            "burst_threads": THREADS,
            "candidate_burst_recorded": recorded,
            "candidate_burst_lost": sent - recorded,
            "baseline_burst_received": received,
            "baseline_burst_lost": sent - received,
            "candidate_burst_s": bridge_burst_s,
            "baseline_burst_s": stock_burst_s,
        },
        "ratio": ratio,
        "ratio_meaning": "candidate per-call time / baseline per-call time (incr + timing); lower is better; target <= 0.3",
        "environment": {
            "python": platform.python_version(),
            "statsd": version("statsd"),
            "prometheus-client": version("prometheus-client"),
            "mlwf-stats-bridge": version("mlwf-stats-bridge"),
            "cpus": os.cpu_count(),
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"stats_bridge: incr {bridge_incr * 1e6:.2f} us vs {stock_incr * 1e6:.2f} us UDP "
        f"({bridge_incr / stock_incr:.2f}x), timing {bridge_timing / stock_timing:.2f}x; "
        f"burst of {sent:,}: bridge lost {sent - recorded:,.0f}, UDP lost {sent - received:,}"
    )


if __name__ == "__main__":
    main()
