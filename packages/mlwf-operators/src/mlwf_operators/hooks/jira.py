"""JIRA (Server/Data Center or Cloud) through its REST API v2 with the ``jira`` client."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import requests
from airflow.sdk import BaseHook
from jira import JIRA, JIRAError

from mlwf_operators.hooks._errors import ConnectionConfigError, ExternalServiceError
from mlwf_operators.hooks._http import base_url, extras

T = TypeVar("T")


class JiraHook(BaseHook):
    """Talk to JIRA.

    Connection (type ``mlwf_jira``): ``host`` the base URL (``https://jira.example.com``),
    ``login``/``password`` for basic authentication, or extra ``{"token": "<PAT>"}`` (or a
    password without a login) for a bearer personal access token; extra ``timeout`` (seconds),
    ``max_retries`` (retries of 429/503 and network errors, default 3), ``verify`` (TLS).
    """

    conn_name_attr = "jira_conn_id"
    default_conn_name = "mlwf_jira_default"
    conn_type = "mlwf_jira"
    hook_name = "JIRA (mlwf)"

    def __init__(self, jira_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.jira_conn_id = jira_conn_id

    @cached_property
    def url(self) -> str:
        """The JIRA base URL of the connection."""
        return base_url(
            self.get_connection(self.jira_conn_id),
            self.conn_type,
            default_port=None,
            default_scheme="https",
        )

    def get_conn(self) -> JIRA:
        """Return a ``jira.JIRA`` client (it reads ``serverInfo`` when created)."""
        conn = self.get_connection(self.jira_conn_id)
        extra = extras(conn, self.conn_type)
        token = extra.get("token") or (conn.password if not conn.login else None)
        auth: dict[str, Any] = {}
        if token:
            auth["token_auth"] = str(token)
        elif conn.login and conn.password:
            auth["basic_auth"] = (conn.login, conn.password)
        else:
            raise ConnectionConfigError(
                self.jira_conn_id, self.conn_type, "set login and password, or extra 'token'"
            )
        return self._call(
            "connect",
            lambda: JIRA(
                self.url,
                options={"verify": extra.get("verify", True)},
                timeout=float(extra.get("timeout", 30)),
                max_retries=int(extra.get("max_retries", 3)),
                **auth,
            ),
        )

    @cached_property
    def client(self) -> JIRA:
        """The client, created on first use."""
        return self.get_conn()

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except JIRAError as error:
            detail = (error.text or "").strip() or "no error message"
            if error.status_code is None and isinstance(
                error.__context__, requests.RequestException
            ):
                detail = f"cannot reach JIRA at {self.url}: {error.__context__}"
            raise ExternalServiceError(
                "JIRA", operation, detail, status=error.status_code
            ) from error
        except requests.RequestException as error:
            raise ExternalServiceError(
                "JIRA", operation, f"cannot reach JIRA at {self.url}: {error}", status=None
            ) from error

    # operations ----------------------------------------------------------------------------
    def create_issue(self, fields: dict[str, Any]) -> str:
        """Create an issue with ``fields`` (REST field ids); return its key."""
        issue = self._call(
            "create issue", lambda: self.client.create_issue(fields=fields, prefetch=False)
        )
        return str(issue.key)

    def update_issue(self, issue_key: str, fields: dict[str, Any]) -> None:
        """Set ``fields`` of issue ``issue_key``."""
        issue = self._call(f"get issue {issue_key}", lambda: self.client.issue(issue_key))
        self._call(f"update issue {issue_key}", lambda: issue.update(fields=fields))

    def add_comment(self, issue_key: str, body: str) -> str:
        """Add comment ``body`` to issue ``issue_key``; return the comment id."""
        comment = self._call(
            f"comment on issue {issue_key}", lambda: self.client.add_comment(issue_key, body)
        )
        return str(comment.id)

    def status(self, issue_key: str) -> str:
        """Return the status name of issue ``issue_key``."""
        issue = self._call(
            f"get issue {issue_key}", lambda: self.client.issue(issue_key, fields="status")
        )
        return str(issue.fields.status.name)

    def transition(
        self, issue_key: str, transition_name: str, *, comment: str | None = None
    ) -> str:
        """Apply the workflow transition named ``transition_name``; return the new status name."""
        available = self._call(
            f"list transitions of issue {issue_key}", lambda: self.client.transitions(issue_key)
        )
        match = [t for t in available if str(t["name"]).lower() == transition_name.lower()]
        if not match:
            names = ", ".join(repr(t["name"]) for t in available) or "none"
            raise ExternalServiceError(
                "JIRA",
                f"transition issue {issue_key}",
                f"no transition named {transition_name!r} from status {self.status(issue_key)!r}; available: {names}",
                status=None,
            )
        transition_id = str(match[0]["id"])
        self._call(
            f"transition issue {issue_key} with {transition_name!r}",
            lambda: self.client.transition_issue(issue_key, transition_id, comment=comment),
        )
        return self.status(issue_key)
