"""``TypeIssue``: one problem found in a DAG, and the list the checker collects a DAG's issues in."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from mlwf_types._hints import type_repr

Severity = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True)
class TypeIssue:
    """One problem found in a DAG, with everything needed to find and fix it.

    ``argument`` is a path into the consumer's argument (``features``, ``params['lr']``,
    ``inputs[2]``); fields that do not apply are None.
    """

    dag_id: str
    task_id: str
    argument: str | None
    producer_task_id: str | None
    xcom_key: str | None
    expected: str | None
    actual: str | None
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str | None]:
        """The JSON form used by ``mlwf-types check --format json``."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


_MISSING = object()


class IssueList:
    """The issues found in one DAG so far, each naming the DAG, task and argument at fault."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self.issues: list[TypeIssue] = []

    def add(
        self,
        task: Any,
        severity: Severity,
        message: str,
        *,
        argument: str | None = None,
        producer: str | None = None,
        key: str | None = None,
        expected: Any = _MISSING,
        actual: str | None = None,
    ) -> None:
        """Record an issue of ``task``; ``expected`` is a type hint, shown as its readable form."""
        self.issues.append(
            TypeIssue(
                dag_id=self.dag_id,
                task_id=task.task_id,
                argument=argument,
                producer_task_id=producer,
                xcom_key=key,
                expected=None if expected is _MISSING else type_repr(expected),
                actual=actual,
                severity=severity,
                message=message,
            )
        )

    def where(self, task: Any, path: str) -> str:
        """Name an argument of a task for messages: DAG, task and argument path."""
        return f"DAG {self.dag_id!r} task {task.task_id!r} argument {path!r}"
