"""The method every benchmark shares (benchmarks/README.md), and the check of their targets.

A benchmark here measures a candidate against a baseline **in the same run**, in rounds whose
order alternates ABBA (:func:`abba`), so that a drift of the machine (warming caches, a busy
neighbour, thermal throttling) falls on both sides alike. It reports each estimate with a 95 %
bootstrap confidence interval (:func:`estimate`, :func:`paired_ratio`) and writes one JSON in
one layout (:func:`write_result`): the estimates, every sample, the environment (commit,
versions, CPU, load before and after) and a digest of the sources it measures.

``benchmarks/targets.toml`` holds each benchmark's targets; :func:`check` compares the results
with them. A target is **met** only when the whole confidence interval is on its side; an
interval that straddles it has **not shown** the target, one wholly beyond has **missed** it.
A result whose sources (``targets.toml``: ``sources``, else the ``packages``' ``src``) changed
since it was measured is **stale**.

Standard library only, so that ``python testsupport/src/mlwf_testsupport/benchmark.py check``
runs anywhere (``uv run nox -s benchmarks_check``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = ROOT / "benchmarks" / "targets.toml"
#: The layout :func:`write_result` writes; older results are reported as such by :func:`check`.
SCHEMA = 2
LEVEL = 0.95
RESAMPLES = 10_000

Statistic = Callable[[Sequence[float]], float]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def source_digest(path: str) -> str | None:
    """SHA-256 over the files at ``path`` (a file or a folder of the repository; tracked and
    untracked files, not ignored ones).

    What a result was measured on, even from a tree with uncommitted changes; ``None`` when
    nothing is there.
    """
    names = sorted(set(_git("ls-files", "-co", "--exclude-standard", "--", path).splitlines()))
    if not names:
        return None
    digest = hashlib.sha256()
    for name in names:
        file = ROOT / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _targets(targets: Path = TARGETS) -> dict[str, Any]:
    return tomllib.loads(targets.read_text(encoding="utf-8"))


def sources_of(spec: dict[str, Any]) -> list[str]:
    """The paths a benchmark measures: its ``sources``, else each of its packages' ``src``."""
    return list(spec.get("sources") or [f"packages/{p}/src" for p in spec.get("packages", [])])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(name: str, *, targets: Path = TARGETS) -> dict[str, Any]:
    """The machine and code benchmark ``name`` runs on; call it before measuring (load before).

    ``name`` must have a table in ``benchmarks/targets.toml``: its ``packages`` (versions) and
    ``sources`` (digests, for the staleness check) come from there.
    """
    table = _targets(targets)
    if name not in table:
        raise SystemExit(
            f"benchmark {name!r} has no [{name}] in {targets}: add its packages and targets"
        )
    spec = table[name]
    versions: dict[str, str | None] = {}
    for package in ["apache-airflow", *spec.get("packages", [])]:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "commit": _git("rev-parse", "HEAD") or None,
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "sources": {path: source_digest(path) for path in sources_of(spec)},
        "python": platform.python_version(),
        "versions": versions,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_before": list(os.getloadavg()),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def abba(rounds: int) -> list[tuple[str, str]]:
    """The order of each round: candidate first in rounds 0 and 3 of every four, else baseline."""
    return [
        ("candidate", "baseline") if r % 4 in (0, 3) else ("baseline", "candidate")
        for r in range(rounds)
    ]


def bootstrap_ci(
    values: Sequence[float],
    statistic: Statistic = statistics.median,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(values)``."""
    if len(values) < 2:
        raise ValueError(f"a confidence interval needs at least 2 values, got {len(values)}")
    rng = random.Random(seed)
    stats = sorted(statistic(rng.choices(values, k=len(values))) for _ in range(resamples))
    tail = (1 - level) / 2
    return stats[int(tail * resamples)], stats[min(resamples - 1, int((1 - tail) * resamples))]


def estimate(
    values: Sequence[float], statistic: Statistic = statistics.median, **bootstrap: Any
) -> dict[str, Any]:
    """``{"value", "ci95", "n"}``: the statistic of ``values`` with its bootstrap interval."""
    low, high = bootstrap_ci(values, statistic, **bootstrap)
    return {"value": statistic(values), "ci95": [low, high], "n": len(values)}


def paired_ratio(
    candidate: Sequence[float], baseline: Sequence[float], **bootstrap: Any
) -> dict[str, Any]:
    """The median of the per-round ratios candidate/baseline, with its interval and the ratios.

    Pairs are the rounds: a ratio per round, so that what slowed a round slows both of its sides.
    """
    if len(candidate) != len(baseline):
        raise ValueError(
            f"unpaired samples: {len(candidate)} candidates, {len(baseline)} baselines"
        )
    ratios = [c / b for c, b in zip(candidate, baseline, strict=True)]
    return {**estimate(ratios, **bootstrap), "ratios": ratios}


def write_result(
    name: str,
    *,
    description: str,
    estimates: dict[str, dict[str, Any]],
    headline: str,
    meaning: str,
    samples: dict[str, Any],
    environment: dict[str, Any],
    summary: str,
    details: dict[str, Any] | None = None,
    results: Path = RESULTS,
) -> Path:
    """Write ``benchmarks/results/<name>.json`` and print the one-line ``summary``.

    ``estimates`` maps names to :func:`estimate`-like dicts (``value``, ``ci95``): those are what
    ``benchmarks/targets.toml`` sets targets on. ``headline`` names the one a reader sees first
    and ``meaning`` says what it is (``"mlwf time / baseline time; lower is better"``).
    """
    if headline not in estimates:
        raise ValueError(f"headline {headline!r} is not one of the estimates {sorted(estimates)}")
    for key, value in estimates.items():
        if not {"value", "ci95"} <= value.keys():
            raise ValueError(f"estimate {key!r} lacks value or ci95")
    env = {
        **environment,
        "load_average_after": list(os.getloadavg()),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    result = {
        "schema": SCHEMA,
        "benchmark": name,
        "description": description,
        "headline": headline,
        "meaning": meaning,
        "estimates": estimates,
        "details": details or {},
        "samples": samples,
        "environment": env,
        "summary": summary,
    }
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(summary, flush=True)
    return path


class SanityError(Exception):
    """The benchmark would measure the wrong thing (a wrong answer, a missing file, a dead
    server): its ``run.py`` prints it and exits 1, unlike a missed target, which exits 0."""


# --- the check of the targets ------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    benchmark: str
    estimate: str
    status: str  # met | not shown | missed | stale | missing | old layout | no target
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "met"


def _verdicts(name: str, spec: dict[str, Any], results: Path) -> list[Verdict]:
    path = results / f"{name}.json"
    if not path.is_file():
        return [Verdict(name, "*", "missing", f"no {path}: run the benchmark")]
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [Verdict(name, "*", "missing", f"{path.name} is not readable JSON: {error}")]
    if result.get("schema") != SCHEMA:
        return [
            Verdict(
                name,
                "*",
                "old layout",
                f"{path.name} predates the common layout (schema {SCHEMA}): run it again",
            )
        ]
    verdicts: list[Verdict] = []
    measured = result.get("environment", {}).get("sources", {})
    for source in sources_of(spec):
        if measured.get(source, "never measured") != source_digest(source):
            last = _git("log", "-1", "--format=%h %cs", "--", source)
            verdicts.append(
                Verdict(
                    name,
                    "*",
                    "stale",
                    f"{source} changed since it was measured (last commit there: {last or 'none'}; "
                    "uncommitted changes count too): run it again",
                )
            )
    for key, target in spec.get("targets", {}).items():
        found = result["estimates"].get(key)
        if found is None:
            verdicts.append(Verdict(name, key, "missing", f"the result has no estimate {key!r}"))
            continue
        low, high = found["ci95"]
        shown = f"{found['value']:.4g} (95% CI {low:.4g}-{high:.4g})"
        if "max" in target:
            bound = target["max"]
            if high <= bound:
                status, how = "met", f"{shown} <= {bound}"
            elif low > bound:
                status, how = "missed", f"{shown}: the whole interval is above {bound}"
            else:
                status, how = "not shown", f"{shown}: the interval reaches above {bound}"
        elif "min" in target:
            bound = target["min"]
            if low >= bound:
                status, how = "met", f"{shown} >= {bound}"
            elif high < bound:
                status, how = "missed", f"{shown}: the whole interval is below {bound}"
            else:
                status, how = "not shown", f"{shown}: the interval reaches below {bound}"
        else:
            status, how = "no target", f"targets.toml gives {key!r} neither max nor min"
        verdicts.append(Verdict(name, key, status, how))
    return verdicts


def check(
    names: Iterable[str] | None = None, *, targets: Path = TARGETS, results: Path = RESULTS
) -> list[Verdict]:
    """The verdict on each target of ``names`` (default: every benchmark in targets.toml)."""
    table = _targets(targets)
    selected = list(names) if names is not None else sorted(table)
    verdicts: list[Verdict] = []
    for name in selected:
        if name not in table:
            verdicts.append(Verdict(name, "*", "no target", f"{targets.name} has no [{name}]"))
            continue
        verdicts.extend(_verdicts(name, table[name], results))
    return verdicts


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmark.py",
        description="Check benchmarks/results/*.json against benchmarks/targets.toml.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("check", help="print a verdict per target; exit 1 unless every one is met")
    run.add_argument("names", nargs="*", help="benchmarks to check (default: all in targets.toml)")
    args = parser.parse_args(argv)
    verdicts = check(args.names or None)
    width = max((len(f"{v.benchmark}.{v.estimate}") for v in verdicts), default=0)
    for v in verdicts:
        print(f"{v.status:>10}  {f'{v.benchmark}.{v.estimate}':<{width}}  {v.message}")
    failed = [v for v in verdicts if not v.ok]
    print(
        f"{len(verdicts) - len(failed)} of {len(verdicts)} targets met"
        + (f"; {len(failed)} not" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main())
