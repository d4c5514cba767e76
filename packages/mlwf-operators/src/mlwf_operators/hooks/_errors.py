"""Errors raised by the hooks of external systems: they name system, operation, status and message."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class ExternalServiceError(AirflowException):
    """A call to an external system (HDFS, JIRA, Jenkins, MLflow) failed.

    ``status`` is the HTTP status of the failing answer; ``None`` when the system could not be
    reached or the client refused the call before sending it.
    """

    def __init__(
        self, system: str, operation: str, message: str, *, status: int | None = None
    ) -> None:
        self.system = system
        self.operation = operation
        self.status = status
        self.detail = message
        where = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{system} {operation} failed{where}: {message}")


class ConnectionConfigError(AirflowException):
    """An Airflow connection for an external system is missing a field or has a bad value."""

    def __init__(self, conn_id: str, conn_type: str, problem: str) -> None:
        self.conn_id = conn_id
        super().__init__(f"connection {conn_id!r} (type {conn_type}): {problem}")


def require_text(owner: str, argument: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string, else raise ``ValueError`` naming ``argument``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"{owner}: argument {argument!r} must be a non-empty string, got {value!r}"
        )
    return value
