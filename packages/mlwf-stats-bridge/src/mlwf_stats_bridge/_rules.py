"""Mapping rules: StatsD metric names (dotted, values inside the name) → Prometheus names and labels.

A rule is a StatsD name *template* such as ``ti.finish.{dag_id}.{task_id}.{state}`` plus the
Prometheus base name it becomes (``ti_finish``) and optional constant labels. Placeholders match
one dot-free segment (Airflow replaces dots inside values with ``__``) and become labels. The
kind suffix (``_total`` for counters, ``_seconds`` for timings) and the ``airflow_`` prefix are
added by the client, not by the rule.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlwf_stats_bridge._airflow_metrics import AIRFLOW_METRICS
from mlwf_stats_bridge._errors import InvalidRuleError, InvalidStatError

#: Environment variable naming a rule file whose rules take precedence over the built-in ones.
RULES_ENV = "MLWF_STATS_BRIDGE_RULES"
#: At most this many labels per rule: more is almost always a cardinality accident.
MAX_LABELS = 8
#: Airflow's variable names that read better as shorter label names.
LABEL_RENAMES: Mapping[str, str] = {"executor_class_name": "executor", "operator_name": "operator"}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]")


def sanitize_name(stat: str) -> str:
    """Return ``stat`` as a valid Prometheus metric name fragment (``[a-zA-Z0-9_]``, no leading digit)."""
    name = _INVALID_NAME_CHARS.sub("_", stat).strip("_")
    name = re.sub(r"_+", "_", name)
    if not name:
        raise InvalidStatError(f"metric name {stat!r} has no letter or digit to build a name from")
    return f"_{name}" if name[0].isdigit() else name


@dataclass(frozen=True)
class Rule:
    """One mapping rule: a StatsD name template → a Prometheus base name and labels."""

    template: str
    name: str
    const_labels: Mapping[str, str] = field(default_factory=dict)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    variables: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        variables = tuple(_PLACEHOLDER.findall(self.template))
        where = f"rule {self.template!r}"
        if not self.template or "{}" in self.template:
            raise InvalidRuleError(f"{where}: empty template or empty placeholder")
        for var in (*variables, *self.const_labels):
            if not _LABEL_NAME.match(var) or var.startswith("__"):
                raise InvalidRuleError(f"{where}: {var!r} is not a valid label name")
        if len(set(variables)) != len(variables):
            raise InvalidRuleError(f"{where}: a placeholder appears twice")
        labels = [LABEL_RENAMES.get(v, v) for v in variables] + list(self.const_labels)
        if len(set(labels)) != len(labels):
            raise InvalidRuleError(f"{where}: label names collide: {labels}")
        if len(labels) > MAX_LABELS:
            raise InvalidRuleError(
                f"{where}: {len(labels)} labels, at most {MAX_LABELS} are allowed per metric"
            )
        if sanitize_name(self.name) != self.name:
            raise InvalidRuleError(f"{where}: {self.name!r} is not a valid Prometheus name")
        regex = ""
        last = 0
        for match in _PLACEHOLDER.finditer(self.template):
            regex += re.escape(self.template[last : match.start()])
            regex += f"(?P<{match.group(1)}>[^.]+?)"
            last = match.end()
        regex += re.escape(self.template[last:])
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))
        object.__setattr__(self, "variables", variables)

    @property
    def label_names(self) -> tuple[str, ...]:
        """The Prometheus label names of the metric, placeholders first."""
        return (*(LABEL_RENAMES.get(v, v) for v in self.variables), *self.const_labels)

    @property
    def literal_length(self) -> int:
        """Characters outside placeholders: more literal text means a more specific rule."""
        return len(_PLACEHOLDER.sub("", self.template))

    def match(self, stat: str) -> tuple[str, ...] | None:
        """Return the label values if ``stat`` matches, else None."""
        found = self.pattern.match(stat)
        if found is None:
            return None
        return (*(found.group(v) for v in self.variables), *self.const_labels.values())


@dataclass(frozen=True)
class Mapped:
    """The result of mapping one StatsD name."""

    name: str
    label_names: tuple[str, ...]
    label_values: tuple[str, ...]
    #: Why the name is not recorded (e.g. "legacy_duplicate"), or None to record it.
    skip_reason: str | None = None
    #: True when no rule matched and the name was only sanitized.
    unknown: bool = False


def _base(modern_name: str) -> str:
    return sanitize_name(_PLACEHOLDER.sub("", modern_name))


def _variable_base(name: str) -> str:
    """Base name of a modern name holding a variable: ``{job_name}_start`` → ``job_start``."""
    if name.startswith("{"):
        return _base(_PLACEHOLDER.sub(lambda m: m.group(1).removesuffix("_name"), name, count=1))
    return _base(name)


def builtin_rules() -> list[Rule]:
    """Return the rules for every metric in Airflow 3.3's metrics registry."""
    rules: list[Rule] = []
    for name, _kind, legacy in AIRFLOW_METRICS:
        if "{" in name:  # the variable is in the modern name itself, e.g. {job_name}_start
            rules.append(Rule(name, _variable_base(name)))
        elif legacy != "-" and "{" in legacy:
            if name.startswith("dagrun.duration."):  # success/failed become a state label
                state = name.rsplit(".", 1)[1]
                rules.append(Rule(legacy, "dagrun_duration", {"state": state}))
            else:
                rules.append(Rule(legacy, _base(name)))
        elif legacy != "-":
            rules.append(Rule(legacy, _base(name)))
    return rules


def legacy_duplicates() -> dict[str, str]:
    """Return the untagged modern names that Airflow also emits in a legacy form with values.

    With ``[metrics] legacy_names_on`` (Airflow's default) every such call arrives twice: once
    as e.g. ``ti.finish`` (its tags are lost on StatsD) and once as
    ``ti.finish.<dag_id>.<task_id>.<state>``. Recording both would double every count.
    """
    return {
        name: legacy
        for name, _kind, legacy in AIRFLOW_METRICS
        if "{" not in name and legacy != "-" and "{" in legacy
    }


def exact_names() -> dict[str, Rule]:
    """Return rules for the modern names without variables (label-less metrics)."""
    rules: dict[str, Rule] = {}
    for name, _kind, _legacy in AIRFLOW_METRICS:
        if "{" in name:
            continue
        if name.startswith("dagrun.duration."):
            rules[name] = Rule(name, "dagrun_duration", {"state": name.rsplit(".", 1)[1]})
        else:
            rules[name] = Rule(name, _base(name))
    return rules


def parse_rule_file(path: str | os.PathLike[str]) -> list[Rule]:
    """Parse a rule file: one ``<statsd template> <prometheus name> [label=value ...]`` per line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidRuleError(f"cannot read rule file {file}: {err}") from err
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise InvalidRuleError(
                f"{file}:{number}: expected '<statsd template> <prometheus name> [label=value ...]', "
                f"got {raw.strip()!r}"
            )
        const: dict[str, str] = {}
        for pair in parts[2:]:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise InvalidRuleError(
                    f"{file}:{number}: constant label {pair!r} is not label=value"
                )
            const[key] = value
        try:
            rules.append(Rule(parts[0], parts[1], const))
        except InvalidRuleError as err:
            raise InvalidRuleError(f"{file}:{number}: {err}") from err
    return rules


class Mapper:
    """Maps StatsD names to Prometheus names and labels with user rules before built-in ones."""

    def __init__(self, extra_rules: Iterable[Rule] = (), *, legacy_names: bool = True) -> None:
        self._user = list(extra_rules)
        builtin = sorted(builtin_rules(), key=lambda r: -r.literal_length)
        self._templates = [r for r in builtin if r.variables]
        self._legacy_literal = {r.template: r for r in builtin if not r.variables}
        self._exact = exact_names()
        self._duplicates = legacy_duplicates() if legacy_names else {}
        self.legacy_names = legacy_names
        #: Every name a rule of this mapper can produce (a name without a rule must not take one).
        self.rule_names = frozenset(
            rule.name for rule in (*self._user, *builtin, *self._exact.values())
        )

    def map(self, stat: str) -> Mapped:
        """Map one StatsD name (without the client prefix)."""
        if not isinstance(stat, str) or not stat:
            raise InvalidStatError(f"metric name must be a non-empty string, got {stat!r}")
        for rule in self._user:
            values = rule.match(stat)
            if values is not None:
                return Mapped(rule.name, rule.label_names, values)
        if stat in self._duplicates:
            base = self._exact[stat]
            return Mapped(base.name, (), (), skip_reason="legacy_duplicate")
        exact = self._exact.get(stat) or self._legacy_literal.get(stat)
        if exact is not None:
            return Mapped(exact.name, exact.label_names, tuple(exact.const_labels.values()))
        for rule in self._templates:
            values = rule.match(stat)
            if values is not None:
                return Mapped(rule.name, rule.label_names, values)
        return Mapped(sanitize_name(stat), (), (), unknown=True)


def rules_from_environment(environ: Mapping[str, str] | None = None) -> list[Rule]:
    """Return the user rules named by ``MLWF_STATS_BRIDGE_RULES`` (none when unset)."""
    path = (os.environ if environ is None else environ).get(RULES_ENV, "").strip()
    return parse_rule_file(path) if path else []
