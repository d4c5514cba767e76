"""Mapping of StatsD names to Prometheus names and labels, over Airflow's whole metric list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlwf_stats_bridge import (
    AIRFLOW_METRICS,
    InvalidRuleError,
    InvalidStatError,
    Mapper,
    Rule,
    parse_rule_file,
)
from mlwf_stats_bridge._rules import LABEL_RENAMES, MAX_LABELS, sanitize_name

PROM_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@pytest.mark.parametrize(
    ("name", "kind", "legacy"), AIRFLOW_METRICS, ids=[m[0] for m in AIRFLOW_METRICS]
)
def test_every_airflow_metric_maps_to_a_valid_name_with_labels(
    name: str, kind: str, legacy: str
) -> None:
    """Each Airflow metric, in the form StatsD receives it, maps to a valid name whose labels hold the values."""
    mapper = Mapper()
    template = legacy if legacy != "-" else name
    variables = PLACEHOLDER.findall(template)
    values = {v: f"v{i}_x__y-z" for i, v in enumerate(variables)}
    stat = template.format(**values)
    mapped = mapper.map(stat)
    assert mapped.skip_reason is None and not mapped.unknown
    assert PROM_NAME.match(mapped.name)
    labels = dict(zip(mapped.label_names, mapped.label_values, strict=True))
    assert {LABEL_RENAMES.get(v, v): values[v] for v in variables}.items() <= labels.items()


@pytest.mark.parametrize(
    ("stat", "name", "labels"),
    [
        ("ti.finish.d.t.success", "ti_finish", {"dag_id": "d", "task_id": "t", "state": "success"}),
        (
            "ti.finish.d.grp__t.failed",
            "ti_finish",
            {"dag_id": "d", "task_id": "grp__t", "state": "failed"},
        ),
        ("dagrun.duration.failed.d", "dagrun_duration", {"dag_id": "d", "state": "failed"}),
        ("dag.d.t.queued_duration", "task_queued_duration", {"dag_id": "d", "task_id": "t"}),
        ("pool.open_slots.default_pool", "pool_open_slots", {"pool_name": "default_pool"}),
        (
            "executor.running_tasks.LocalExecutor",
            "executor_running_tasks",
            {"executor": "LocalExecutor"},
        ),
        ("operator_successes_PythonOperator", "operator_successes", {"operator": "PythonOperator"}),
        ("ti.queued.default.d.t", "ti_queued", {"queue": "default", "dag_id": "d", "task_id": "t"}),
        ("scheduler_job_start", "job_start", {"job_name": "scheduler_job"}),
        ("scheduler_heartbeat", "scheduler_heartbeat", {}),
    ],
)
def test_known_names_map_to_documented_series(stat: str, name: str, labels: dict[str, str]) -> None:
    """Representative Airflow names map to the names and labels the docs promise."""
    mapped = Mapper().map(stat)
    assert (mapped.name, dict(zip(mapped.label_names, mapped.label_values, strict=True))) == (
        name,
        labels,
    )


def test_untagged_twins_of_legacy_names_are_skipped_only_in_legacy_mode() -> None:
    """With legacy names on, ti.finish is skipped as a duplicate; with them off it is recorded unlabelled."""
    assert Mapper().map("ti.finish").skip_reason == "legacy_duplicate"
    off = Mapper(legacy_names=False).map("ti.finish")
    assert (off.name, off.label_names, off.skip_reason) == ("ti_finish", (), None)


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("my metric/ü.x", "my_metric_x"), ("9lives", "_9lives"), ("a..b--c", "a_b_c")],
)
def test_unknown_names_are_sanitized_not_dropped(stat: str, expected: str) -> None:
    """A name no rule knows becomes a valid Prometheus name and is flagged unknown."""
    mapped = Mapper().map(stat)
    assert (mapped.name, mapped.unknown, mapped.skip_reason) == (expected, True, None)


@pytest.mark.parametrize("stat", ["", "...", "/ü/", None, 3])
def test_unusable_names_raise_a_clear_error(stat: object) -> None:
    """Empty, symbol-only and non-string names raise InvalidStatError naming the input."""
    with pytest.raises(InvalidStatError, match="metric name"):
        Mapper().map(stat)  # type: ignore[arg-type]


def test_user_rules_take_precedence(tmp_path: Path) -> None:
    """A rule file's rules win over the built-in ones and may add constant labels."""
    rules = tmp_path / "rules.txt"
    rules.write_text(
        "# team metrics\nml.{model}.loss   ml_loss  source=airflow\n"
        "ti.finish.{dag_id}.{task_id}.{state}  task_outcome\n"
    )
    mapper = Mapper(parse_rule_file(rules))
    loss = mapper.map("ml.bert.loss")
    assert (loss.name, loss.label_names, loss.label_values) == (
        "ml_loss",
        ("model", "source"),
        ("bert", "airflow"),
    )
    assert mapper.map("ti.finish.d.t.success").name == "task_outcome"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("only.one.field", "expected '<statsd template> <prometheus name>"),
        ("a.{x}.{x} name", "appears twice"),
        ("a.{bad-label} name", "not a valid label name"),
        ("a.{x} bad-name", "not a valid Prometheus name"),
        ("a.{x} name novalue", "is not label=value"),
        ("a.{} name", "empty placeholder"),
        ("a." + ".".join(f"{{l{i}}}" for i in range(MAX_LABELS + 1)) + " name", "at most"),
    ],
)
def test_bad_rule_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    """Each kind of bad rule raises InvalidRuleError naming the file, the line number and the problem."""
    rules = tmp_path / "rules.txt"
    rules.write_text(f"# ok\n{line}\n")
    with pytest.raises(InvalidRuleError, match=re.escape(f"{rules}:2")) as err:
        parse_rule_file(rules)
    assert message in str(err.value)


def test_missing_rule_file_is_a_clear_error(tmp_path: Path) -> None:
    """A rule file that does not exist raises InvalidRuleError naming it."""
    with pytest.raises(InvalidRuleError, match="cannot read rule file"):
        parse_rule_file(tmp_path / "nope.txt")


def test_rule_rejects_label_collisions() -> None:
    """A constant label with the name of a placeholder is refused."""
    with pytest.raises(InvalidRuleError, match="collide"):
        Rule("a.{state}", "a", {"state": "x"})


def test_sanitize_name_keeps_valid_names() -> None:
    """A valid name is returned unchanged."""
    assert sanitize_name("airflow_ok_1") == "airflow_ok_1"
