"""Errors of mlwf-stats-bridge: specific classes whose messages name the metric, rule or file at fault."""

from __future__ import annotations


class StatsBridgeError(Exception):
    """Base class of every error raised by mlwf-stats-bridge."""


class InvalidStatError(StatsBridgeError, ValueError):
    """A metric name or value that cannot be recorded (e.g. an empty name, a non-numeric value)."""


class InvalidRuleError(StatsBridgeError, ValueError):
    """A mapping rule (or rule file line) that cannot be used."""


class InvalidSettingError(StatsBridgeError, ValueError):
    """A bridge setting (environment variable or argument) with an unusable value."""
