"""The highest rate our load generator sustains against a trivial endpoint, vs wrk in the same run.

The endpoint is a minimal uvloop server returning a fixed 2-byte response over keep-alive, in
its own process. Both generators run closed-loop with the same connections for the same time,
alternating per repetition; one generator process / one wrk thread each.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from mlwf_operators.loadgen import run_load
from mlwf_operators.processes import kill_tree, wait_until_healthy
from mlwf_testsupport import free_port

NAME = "loadgen"
CONNECTIONS = 32
DURATION = 5.0
REPETITIONS = 3

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


def wrk_rate(url: str) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(DURATION)}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=DURATION + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return float(match.group(1))


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/loadgen needs wrk: apt-get install wrk")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_healthy(url, process=server, timeout=30)
        run_load(url, duration=1.0, concurrency=CONNECTIONS)  # warm-up
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(REPETITIONS):
            result = run_load(url, duration=DURATION, concurrency=CONNECTIONS)
            if result["errors"]:
                raise RuntimeError(f"{result['errors']} errors against the trivial endpoint")
            ours.append(result["throughput_rps"])
            theirs.append(wrk_rate(url))
    finally:
        kill_tree(server.pid, grace=2)
        server.wait()
    ratio = statistics.median(ours) / statistics.median(theirs)
    result = {
        "benchmark": NAME,
        "description": (
            f"requests/s sustained against a trivial keep-alive endpoint: mlwf load generator (one process, "
            f"closed loop) vs wrk -t1, both {CONNECTIONS} connections, {DURATION:g} s per run"
        ),
        "measurements": {
            "candidate_rps": statistics.median(ours),
            "baseline_rps": statistics.median(theirs),
            "candidate_runs": ours,
            "baseline_runs": theirs,
            "repetitions": REPETITIONS,
            "statistic": "median",
        },
        "ratio": ratio,
        "ratio_meaning": "candidate requests/s / wrk requests/s; higher is better",
        "environment": {
            "python": platform.python_version(),
            "mlwf-operators": version("mlwf-operators"),
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
                0
            ],
            "cpus": os.cpu_count(),
        },
    }
    out = Path(__file__).resolve().parent.parent / "results" / f"{NAME}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"loadgen: {statistics.median(ours):,.0f} req/s vs wrk {statistics.median(theirs):,.0f} req/s "
        f"({ratio:.2f}x) against a trivial endpoint, {CONNECTIONS} connections"
    )


if __name__ == "__main__":
    main()
