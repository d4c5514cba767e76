"""Operators for JIRA issues: create, update fields, comment, transition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from mlwf_types import typed

from mlwf_operators.hooks._errors import require_text
from mlwf_operators.hooks.jira import JiraHook


class _JiraOperator(BaseOperator):
    ui_color = "#deebff"

    def __init__(self, *, jira_conn_id: str = JiraHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jira_conn_id = jira_conn_id

    def _text(self, argument: str) -> str:
        return require_text(f"task {self.task_id!r}", argument, getattr(self, argument))

    def _fields(self, argument: str) -> dict[str, Any]:
        value = getattr(self, argument)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(
                f"task {self.task_id!r}: argument {argument!r} must be a dict of JIRA field ids to values, got {value!r}"
            )
        return value

    def hook(self) -> JiraHook:
        """Return the hook of this task's connection."""
        return JiraHook(self.jira_conn_id)


@typed(
    inputs={
        "project_key": str,
        "summary": str,
        "issue_type": str,
        "description": str | None,
        "labels": list[str],
        "fields": dict[str, Any],
    },
    outputs={"return_value": str},
)
class JiraCreateIssueOperator(_JiraOperator):
    """Create a JIRA issue; return its key."""

    template_fields: Sequence[str] = ("project_key", "summary", "description", "labels", "fields")

    def __init__(
        self,
        *,
        project_key: str,
        summary: str,
        issue_type: str = "Task",
        description: str | None = None,
        labels: list[str] | None = None,
        fields: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_key = project_key
        self.summary = summary
        self.issue_type = issue_type
        self.description = description
        self.labels = labels or []
        self.fields = fields or {}

    def execute(self, context: Any) -> str:
        """Create the issue from the arguments (``fields`` adds or overrides REST fields)."""
        fields: dict[str, Any] = {
            "project": {"key": self._text("project_key")},
            "issuetype": {"name": self._text("issue_type")},
            "summary": self._text("summary"),
        }
        if self.description is not None:
            fields["description"] = self.description
        if self.labels:
            fields["labels"] = list(self.labels)
        fields.update(self._fields("fields"))
        key = self.hook().create_issue(fields)
        self.log.info("Created JIRA issue %s", key)
        return key


@typed(inputs={"issue_key": str, "fields": dict[str, Any]}, outputs={"return_value": str})
class JiraUpdateIssueOperator(_JiraOperator):
    """Set fields of a JIRA issue; return its key."""

    template_fields: Sequence[str] = ("issue_key", "fields")

    def __init__(self, *, issue_key: str, fields: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.issue_key = issue_key
        self.fields = fields

    def execute(self, context: Any) -> str:
        """Update ``fields`` of ``issue_key``."""
        key, fields = self._text("issue_key"), self._fields("fields")
        if not fields:
            raise ValueError(
                f"task {self.task_id!r}: argument 'fields' is empty: nothing to update on {key}"
            )
        self.hook().update_issue(key, fields)
        return key


@typed(inputs={"issue_key": str, "body": str}, outputs={"return_value": str})
class JiraCommentOperator(_JiraOperator):
    """Comment on a JIRA issue; return the comment id."""

    template_fields: Sequence[str] = ("issue_key", "body")

    def __init__(self, *, issue_key: str, body: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.issue_key = issue_key
        self.body = body

    def execute(self, context: Any) -> str:
        """Add ``body`` as a comment on ``issue_key``."""
        return self.hook().add_comment(self._text("issue_key"), self._text("body"))


@typed(
    inputs={"issue_key": str, "transition": str, "comment": str | None},
    outputs={"return_value": str},
)
class JiraTransitionOperator(_JiraOperator):
    """Move a JIRA issue through the workflow transition with the given name; return the new status."""

    template_fields: Sequence[str] = ("issue_key", "transition", "comment")

    def __init__(
        self, *, issue_key: str, transition: str, comment: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.issue_key = issue_key
        self.transition = transition
        self.comment = comment

    def execute(self, context: Any) -> str:
        """Apply ``transition`` to ``issue_key``."""
        return self.hook().transition(
            self._text("issue_key"), self._text("transition"), comment=self.comment
        )
