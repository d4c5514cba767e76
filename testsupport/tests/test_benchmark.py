"""mlwf_testsupport.benchmark: the benchmarks' shared method and the check of their targets."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlwf_testsupport import benchmark
from mlwf_testsupport.benchmark import (
    abba,
    bootstrap_ci,
    check,
    environment,
    estimate,
    paired_ratio,
    source_digest,
    write_result,
)


def test_abba_alternates_which_side_goes_first() -> None:
    assert abba(6) == [
        ("candidate", "baseline"),
        ("baseline", "candidate"),
        ("baseline", "candidate"),
        ("candidate", "baseline"),
        ("candidate", "baseline"),
        ("baseline", "candidate"),
    ]
    first = [order[0] for order in abba(40)]
    assert first.count("candidate") == first.count("baseline") == 20


def test_bootstrap_interval_holds_the_median_is_seeded_and_narrows_with_more_values() -> None:
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2, 0.8, 1.0, 1.02, 0.98]
    low, high = bootstrap_ci(values)
    assert low <= statistics.median(values) <= high
    assert bootstrap_ci(values) == (low, high)  # the same seed, the same interval
    many = values * 10
    many_low, many_high = bootstrap_ci(many)
    assert many_high - many_low < high - low
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0])


def test_one_slow_baseline_cannot_make_a_pass_when_rounds_are_paired() -> None:
    """Issue 15's types_overhead: paired per-round ratios, not the ratio of unpaired medians."""
    # Its per-round ratios were 0.998, 0.755, 1.106, 1.060, 0.959, 1.073, 1.060.
    baseline = [1.04, 1.40, 1.00, 0.98, 1.05, 0.97, 1.03]
    candidate = [1.0379, 1.057, 1.106, 1.0388, 1.007, 1.0408, 1.0918]
    unpaired = statistics.median(candidate) / statistics.median(baseline)
    paired = paired_ratio(candidate, baseline)
    assert unpaired < 1.05 < paired["value"]  # a pass unpaired, a miss paired
    assert paired["value"] == pytest.approx(1.06, abs=1e-3)
    assert paired["ratios"][1] == pytest.approx(0.755, abs=1e-3)
    with pytest.raises(ValueError, match="unpaired"):
        paired_ratio([1.0, 2.0], [1.0])


def _targets(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(body)
    return path


def _result(results: Path, name: str, estimates: dict[str, Any], sources: dict[str, Any]) -> None:
    write_result(
        name,
        description="d",
        estimates=estimates,
        headline=next(iter(estimates)),
        meaning="m",
        samples={},
        environment={"sources": sources},
        summary=f"{name}: done",
        results=results,
    )


def test_a_target_is_met_only_by_its_whole_interval(tmp_path: Path, capsys: Any) -> None:
    targets = _targets(
        tmp_path,
        """
[fast]
sources = ["noxfile.py"]
targets.ratio = { max = 1.05 }
targets.throughput = { min = 1.5 }
targets.absent = { max = 1 }
""",
    )
    results = tmp_path / "results"
    digest = {"noxfile.py": source_digest("noxfile.py")}
    _result(
        results,
        "fast",
        {
            "ratio": {"value": 1.0, "ci95": [0.98, 1.06]},
            "throughput": {"value": 2.0, "ci95": [1.6, 2.4]},
        },
        digest,
    )
    assert capsys.readouterr().out == "fast: done\n"
    verdicts = {v.estimate: v for v in check(targets=targets, results=results)}
    assert (
        verdicts["ratio"].status == "not shown"
        and "reaches above 1.05" in verdicts["ratio"].message
    )
    assert verdicts["throughput"].status == "met" and verdicts["throughput"].ok
    assert verdicts["absent"].status == "missing"
    assert "*" not in verdicts  # not stale: the digest is today's

    _result(
        results,
        "fast",
        {
            "ratio": {"value": 1.2, "ci95": [1.1, 1.3]},
            "throughput": {"value": 1.0, "ci95": [0.9, 1.4]},
        },
        digest,
    )
    verdicts = {v.estimate: v for v in check(targets=targets, results=results)}
    assert (
        verdicts["ratio"].status == "missed"
        and "whole interval is above 1.05" in verdicts["ratio"].message
    )
    assert verdicts["throughput"].status == "missed"


def test_stale_old_and_missing_results_are_named(tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        """
[changed]
sources = ["noxfile.py"]
targets.ratio = { max = 2 }
[old]
packages = ["mlwf-types"]
targets.ratio = { max = 2 }
[never]
targets.ratio = { max = 2 }
""",
    )
    results = tmp_path / "results"
    _result(
        results, "changed", {"ratio": {"value": 1.0, "ci95": [0.9, 1.1]}}, {"noxfile.py": "0" * 64}
    )
    (results / "old.json").write_text(json.dumps({"benchmark": "old", "ratio": 1.0}))
    verdicts = check(targets=targets, results=results)
    by = {(v.benchmark, v.estimate): v for v in verdicts}
    assert (
        by[("changed", "*")].status == "stale"
        and "noxfile.py changed" in by[("changed", "*")].message
    )
    assert by[("changed", "ratio")].status == "met"  # the numbers are judged, and still stale
    assert by[("old", "*")].status == "old layout"
    assert by[("never", "*")].status == "missing"
    assert [v.status for v in check(["unknown"], targets=targets, results=results)] == ["no target"]


def test_environment_needs_a_targets_entry_and_records_the_commit(tmp_path: Path) -> None:
    targets = _targets(tmp_path, '[b]\npackages = ["mlwf-types"]\n')
    env = environment("b", targets=targets)
    assert env["commit"] and len(env["commit"]) == 40
    assert (
        set(env["sources"]) == {"packages/mlwf-types/src"}
        and env["sources"]["packages/mlwf-types/src"]
    )
    assert "apache-airflow" in env["versions"] and len(env["load_average_before"]) == 3
    with pytest.raises(SystemExit, match=r"no \[other\]"):
        environment("other", targets=targets)


def test_write_result_refuses_an_unknown_headline_and_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="headline"):
        write_result("x", description="", estimates={}, headline="r", meaning="", samples={},
                     environment={}, summary="", results=tmp_path)  # fmt: skip
    with pytest.raises(ValueError):
        write_result("x", description="", estimates={"r": {"value": float("nan"), "ci95": [0, 1]}},
                     headline="r", meaning="", samples={}, environment={}, summary="",
                     results=tmp_path)  # fmt: skip


def test_estimate_reports_the_statistic_interval_and_count() -> None:
    found = estimate([3.0, 1.0, 2.0, 4.0, 5.0])
    assert found["value"] == 3.0 and found["n"] == 5 and found["ci95"][0] <= 3.0 <= found["ci95"][1]


def test_the_check_runs_as_a_script_with_the_standard_library_only() -> None:
    """`nox -s benchmarks_check` runs the file with nox's own Python: no mlwf package there."""
    done = subprocess.run(
        [sys.executable, "-S", benchmark.__file__, "check", "no_such_benchmark"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no [no_such_benchmark]" in done.stdout and "0 of 1 targets met" in done.stdout
