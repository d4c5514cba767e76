"""Helpers shared by the hooks: base URLs from Airflow connections, last HTTP status of a session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlwf_operators.hooks._errors import ConnectionConfigError

if TYPE_CHECKING:  # only annotations: DAG files importing the MLflow operator skip requests
    import requests


def base_url(conn: Any, conn_type: str, *, default_port: int | None, default_scheme: str) -> str:
    """Return ``scheme://host[:port][/path]`` from an Airflow connection.

    ``host`` may be a full URL; otherwise the scheme comes from extra ``scheme`` (or the
    connection's ``schema`` field when it is http/https), defaulting to ``default_scheme``.
    """
    host = (conn.host or "").strip()
    if not host:
        raise ConnectionConfigError(conn.conn_id, conn_type, "field 'host' is empty")
    extra = extras(conn, conn_type)
    if "://" in host:
        scheme, _, rest = host.partition("://")
    else:
        field_schema = conn.schema if conn.schema in ("http", "https") else None
        scheme, rest = str(extra.get("scheme") or field_schema or default_scheme), host
    if scheme not in ("http", "https"):
        raise ConnectionConfigError(
            conn.conn_id, conn_type, f"scheme must be 'http' or 'https', got {scheme!r}"
        )
    hostport, slash, path = rest.partition("/")
    port = conn.port or default_port
    if port is not None and ":" not in hostport:
        hostport = f"{hostport}:{port}"
    return f"{scheme}://{hostport}{slash}{path}".rstrip("/")


class StatusRecorder:
    """Remember the status and reason of the last HTTP response a ``requests`` session received."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.reason: str = ""
        self.text: str = ""

    def attach(self, session: requests.Session) -> None:
        """Register as a response hook of ``session``."""
        session.hooks["response"].append(self._record)

    def reset(self) -> None:
        """Forget the last response (call before each operation)."""
        self.status, self.reason, self.text = None, "", ""

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.status = response.status_code
        self.reason = response.reason or ""
        if response.status_code >= 400:
            self.text = response.text[:2000]


def extras(conn: Any, conn_type: str) -> dict[str, Any]:
    """Return the connection's extra as a dict with bare keys.

    The connection form stores the provider's ``conn-fields`` as ``extra__<conn_type>__<name>``;
    hand-written connections use ``<name>``. Both are accepted; the bare key wins.
    """
    raw: dict[str, Any] = dict(conn.extra_dejson)
    prefix = f"extra__{conn_type}__"
    bare = {
        k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix) and v not in (None, "")
    }
    return {**bare, **{k: v for k, v in raw.items() if not k.startswith(prefix)}}
