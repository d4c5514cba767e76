"""Sensor that watches a JIRA issue until its status is one of the wanted ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException
from mlwf_types import typed

from mlwf_operators.hooks._errors import require_text
from mlwf_operators.hooks.jira import JiraHook


@typed(
    inputs={"issue_key": str, "target_statuses": list[str], "failure_statuses": list[str]},
    outputs={"return_value": str},
)
class JiraIssueSensor(BaseSensorOperator):
    """Wait until a JIRA issue reaches one of ``target_statuses``; fail on ``failure_statuses``; return the status."""

    template_fields: Sequence[str] = ("issue_key", "target_statuses", "failure_statuses")

    def __init__(
        self,
        *,
        issue_key: str,
        target_statuses: list[str],
        failure_statuses: list[str] | None = None,
        jira_conn_id: str = JiraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = kwargs.get("task_id")
        if isinstance(target_statuses, str) or not target_statuses:
            raise ValueError(
                f"task {task!r}: argument 'target_statuses' must be a non-empty list of status names, got {target_statuses!r}"
            )
        overlap = set(target_statuses) & set(failure_statuses or [])
        if overlap:
            raise ValueError(
                f"task {task!r}: statuses {sorted(overlap)} are both target and failure statuses"
            )
        self.issue_key = issue_key
        self.target_statuses = list(target_statuses)
        self.failure_statuses = list(failure_statuses or [])
        self.jira_conn_id = jira_conn_id

    def poke(self, context: Any) -> PokeReturnValue:
        """Return done when the issue's status is a target status."""
        key = require_text(f"task {self.task_id!r}", "issue_key", self.issue_key)
        status = JiraHook(self.jira_conn_id).status(key)
        self.log.info("JIRA issue %s is %r", key, status)
        lowered = status.lower()
        if lowered in {s.lower() for s in self.failure_statuses}:
            raise AirflowFailException(
                f"JIRA issue {key} reached failure status {status!r} (waiting for {self.target_statuses})"
            )
        done = lowered in {s.lower() for s in self.target_statuses}
        return PokeReturnValue(is_done=done, xcom_value=status if done else None)
