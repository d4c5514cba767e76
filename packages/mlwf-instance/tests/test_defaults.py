"""mlwf.instance.defaults: each installed package contributes its own instance options and environment."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from mlwf_instance import InvalidConfigError
from mlwf_instance._defaults import DEFAULTS_GROUP, DefaultsContext, collect_defaults


def _context(tmp_path: Path, **changes: object) -> DefaultsContext:
    fields: dict[str, object] = {
        "name": "t",
        "home": tmp_path,
        "airflow_home": tmp_path / "airflow",
        "constructed_folder": tmp_path / "constructed",
        "constructed_bundle": "mlwf-constructed",
        "metrics_dir": tmp_path / "metrics",
        "metrics_enabled": True,
        "executor": "local",
        "database_kind": "sqlite",
        "team": False,
    }
    return DefaultsContext(**(fields | changes))  # type: ignore[arg-type]


def _point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=DEFAULTS_GROUP)


def test_installed_siblings_contribute_their_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: constructors, stats-bridge and operators set their own options and variables through the entry point group."""
    monkeypatch.delenv("AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT", raising=False)
    merged = collect_defaults(_context(tmp_path))
    assert merged.airflow_config["mlwf_constructors"] == {
        "instances_folder": str(tmp_path / "constructed"),
        "bundle_name": "mlwf-constructed",
    }
    assert merged.airflow_config["metrics"]["statsd_custom_client_path"] == (
        "mlwf_stats_bridge.PrometheusStatsClient"
    )
    assert merged.environment["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert (
        str(tmp_path / "airflow" / "mlwf" / "mlflow.db")
        in (merged.environment["AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT"])
    )
    assert "mlwf_stats_bridge" not in merged.airflow_config  # laptop: Airflow's default access


def test_context_decides_what_is_contributed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: metrics disabled contribute no [metrics]; a team instance restricts metrics; a user's MLflow connection wins."""
    monkeypatch.setenv("AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT", "mlwf-mlflow://tracking.example")
    off = collect_defaults(_context(tmp_path, metrics_enabled=False))
    assert "metrics" not in off.airflow_config and "PROMETHEUS_MULTIPROC_DIR" not in off.environment
    assert "AIRFLOW_CONN_MLWF_MLFLOW_DEFAULT" not in off.environment
    team = collect_defaults(_context(tmp_path, team=True, database_kind="postgresql"))
    assert team.airflow_config["mlwf_stats_bridge"] == {"metrics_access": "edit_configuration"}


def test_contradicting_or_broken_contributions_are_named(tmp_path: Path) -> None:
    """Issue 11: two packages setting one option differently, a failing one, or a wrong shape are errors naming the entry point."""
    ctx = _context(tmp_path)
    constructors = _point("a", "mlwf_constructors.instance_defaults:instance_defaults")
    with pytest.raises(
        InvalidConfigError,
        match=r"entry point b .* sets \[mlwf_constructors\] bundle_name = 'other', but .*entry point a",
    ):
        collect_defaults(ctx, [constructors, _point("b", f"{__name__}:_clash")])
    with pytest.raises(
        InvalidConfigError, match=r"entry point c \(.*_broken\) failed: RuntimeError: boom"
    ):
        collect_defaults(ctx, [_point("c", f"{__name__}:_broken")])
    with pytest.raises(InvalidConfigError, match=r"unknown key\(s\) metrics"):
        collect_defaults(ctx, [_point("d", f"{__name__}:_flat")])


def _clash(context: object) -> dict[str, object]:
    return {"airflow_config": {"mlwf_constructors": {"bundle_name": "other"}}}


def _broken(context: object) -> dict[str, object]:
    raise RuntimeError("boom")


def _flat(context: object) -> dict[str, object]:
    return {"metrics": {"statsd_on": "True"}}
