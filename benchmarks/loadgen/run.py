"""loadgen: the highest rate mlwf's load generator sustains against a trivial endpoint, vs wrk.

The endpoint is a minimal uvloop server returning a fixed 2-byte response over keep-alive, in
its own process. Both generators run closed-loop with the same connections for the same time:

- **candidate:** ``mlwf_operators.loadgen.run_load`` (one process, one event loop);
- **baseline:** ``wrk -t1`` (one thread), Debian's wrk.

After a warm-up of each, ROUNDS paired rounds in ABBA order; the ratio is the median of the
per-round ratios of requests/s (candidate / wrk; higher is better) with a 95 % bootstrap
interval. No target: the number says how far below its ceiling a load test must stay to measure
the service, not the generator (docs/mlwf-operators/load-testing.md). A run with an error or a
non-2xx answer fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

from mlwf_operators.loadgen import run_load
from mlwf_operators.processes import kill_tree, wait_until_healthy
from mlwf_testsupport import free_port
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result

CONNECTIONS = 32
DURATION = 4.0
ROUNDS = int(os.environ.get("MLWF_BENCH_LOADGEN_ROUNDS", "16"))

SERVER = r"""
import asyncio, sys, uvloop
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
    def data_received(self, data):
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * count)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
uvloop.run(main())
"""


def wrk(url: str, duration: float) -> float:
    """wrk's requests/s; fails on socket errors or non-2xx answers."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(duration)}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    if "Socket errors" in out or "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors against the trivial endpoint:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def ours(url: str, duration: float) -> float:
    """mlwf's load generator's requests/s; fails on any error."""
    result = run_load(url, duration=duration, concurrency=CONNECTIONS)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} errors against the trivial endpoint")
    return result["throughput_rps"]


def main() -> None:
    started_at = time.monotonic()
    env_before = environment("loadgen")
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/loadgen needs wrk: apt-get install wrk")
    orders = abba(ROUNDS)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    sides = {"candidate": ours, "baseline": wrk}
    samples: dict[str, list[float]] = {"candidate_rps": [], "baseline_rps": []}
    try:
        wait_until_healthy(url, process=server, timeout=30)
        for measure in sides.values():  # warm-up
            measure(url, 1.0)
        for order in orders:
            for side in order:
                samples[f"{side}_rps"].append(sides[side](url, DURATION))
    finally:
        kill_tree(server.pid, grace=2)
        server.wait()
    ratio = paired_ratio(samples["candidate_rps"], samples["baseline_rps"])
    ratios = ratio.pop("ratios")
    estimates = {
        "ratio": ratio,
        "candidate_rps": estimate(samples["candidate_rps"]),
        "baseline_rps": estimate(samples["baseline_rps"]),
    }
    c, b = estimates["candidate_rps"], estimates["baseline_rps"]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    write_result(
        "loadgen",
        description=(
            "requests/s sustained against a trivial keep-alive endpoint (uvloop, 2-byte answer, own "
            "process): mlwf load generator (one process, closed loop) vs wrk -t1, both "
            f"{CONNECTIONS} connections, {DURATION:g} s per run, {ROUNDS} ABBA rounds after a warm-up"
        ),
        estimates=estimates,
        headline="ratio",
        meaning="mlwf load generator requests/s / wrk requests/s, per round; higher is better; no target",
        samples={**samples, "ratios": ratios, "order": [list(o) for o in orders]},
        details={
            "connections": CONNECTIONS,
            "duration_s": DURATION,
            "rounds": ROUNDS,
            "wrk": wrk_version.splitlines()[0] if wrk_version else None,
            "wall_s": time.monotonic() - started_at,
        },
        environment=env_before,
        summary=(
            f"loadgen: {c['value']:,.0f} req/s vs wrk {b['value']:,.0f} req/s against a trivial "
            f"endpoint, {CONNECTIONS} connections: {ratio['value']:.2f}x (95% CI "
            f"{ratio['ci95'][0]:.2f}-{ratio['ci95'][1]:.2f}, {ROUNDS} rounds; no target)"
        ),
    )


if __name__ == "__main__":
    main()
