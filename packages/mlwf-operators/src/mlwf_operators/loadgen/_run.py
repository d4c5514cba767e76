"""Open-loop (fixed rate) and closed-loop (fixed concurrency) load runs with exact percentiles."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mlwf_operators._errors import (
    LoadGenError as LoadGenError,
    ServiceUnreachableError as ServiceUnreachableError,
)
from mlwf_operators.loadgen._client import Connection, LoadTarget
from mlwf_operators.loadgen._result import LoadTestResult as LoadTestResult


@dataclass
class _Samples:
    latencies: list[float]
    errors: int = 0
    first_error: str = ""

    def error(self, exc: BaseException | str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = str(exc) if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"


async def _probe(target: LoadTarget, timeout: float) -> None:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise ServiceUnreachableError(f"cannot connect to {target.url}: {exc}") from exc
    writer.close()


async def _one(conn: Connection, samples: _Samples, started: float, timeout: float) -> None:
    try:
        status = await asyncio.wait_for(conn.request(), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        samples.error(exc)
        return
    if status >= 400:
        samples.error(f"HTTP {status}")
    else:
        samples.latencies.append(time.perf_counter() - started)


async def _closed_loop(
    target: LoadTarget, concurrency: int, duration: float, timeout: float, samples: _Samples
) -> None:
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        conn = Connection(target)
        try:
            while time.perf_counter() < deadline:
                await _one(conn, samples, time.perf_counter(), timeout)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _open_loop(
    target: LoadTarget,
    rate: float,
    connections: int,
    duration: float,
    timeout: float,
    samples: _Samples,
) -> None:
    # Request i is due at start + i/rate. Latency counts from that due time, so a backlog (all
    # connections busy) shows up as latency instead of silently lowering the rate.
    total = int(rate * duration)
    due: asyncio.Queue[float | None] = asyncio.Queue()
    start = time.perf_counter() + 0.01

    async def scheduler() -> None:
        for i in range(total):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(at)
        for _ in range(connections):
            due.put_nowait(None)

    async def worker() -> None:
        conn = Connection(target)
        try:
            while (at := await due.get()) is not None:
                if time.perf_counter() - at > timeout:
                    samples.error(f"request not sent within {timeout:g} s of its scheduled time")
                    continue
                await _one(conn, samples, at, timeout)
        finally:
            conn.close()

    await asyncio.gather(scheduler(), *(worker() for _ in range(connections)))


def run_load(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    duration: float = 10.0,
    rate: float | None = None,
    concurrency: int = 8,
    timeout: float = 10.0,
) -> LoadTestResult:
    """Load ``url`` for ``duration`` s and return counts, throughput and latency percentiles.

    With ``rate`` (requests/s) the run is open-loop: requests are due on a fixed clock and
    latency is measured from the due time (no coordinated omission), using up to ``concurrency``
    connections. Without it the run is closed-loop: ``concurrency`` connections each send the
    next request as soon as the previous answer arrives. Percentiles are exact (all samples).
    """
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    target = LoadTarget(url, method, body)
    samples = _Samples([])

    async def main() -> float:
        await _probe(target, timeout)
        started = time.perf_counter()
        if rate is None:
            await _closed_loop(target, concurrency, duration, timeout, samples)
        else:
            await _open_loop(target, rate, concurrency, duration, timeout, samples)
        return time.perf_counter() - started

    try:
        import uvloop

        elapsed = uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        elapsed = asyncio.run(main())
    import numpy as np  # here, not at import: LoadTestOperator's DAG files import this module

    ok = np.asarray(samples.latencies, dtype=np.float64) * 1000.0
    total = len(ok) + samples.errors
    if not len(ok):
        raise LoadGenError(
            f"no request to {method} {url} succeeded ({samples.errors} failed); first error: {samples.first_error or 'none'}"
        )
    p50, p95, p99 = (float(v) for v in np.percentile(ok, [50, 95, 99], method="higher"))
    worst = float(ok.max())
    return LoadTestResult(
        requests=total,
        errors=samples.errors,
        error_rate=samples.errors / total if total else 0.0,
        duration_s=elapsed,
        throughput_rps=len(ok) / elapsed if elapsed > 0 else 0.0,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=worst,
    )
