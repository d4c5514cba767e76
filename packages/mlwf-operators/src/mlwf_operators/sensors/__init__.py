"""Sensors of the external systems: HDFS paths and JIRA issue statuses."""

from __future__ import annotations

from mlwf_operators.sensors.hdfs import HdfsPathSensor
from mlwf_operators.sensors.jira import JiraIssueSensor

__all__ = ["HdfsPathSensor", "JiraIssueSensor"]
