"""``hdfs://`` for Airflow's ``ObjectStoragePath``: fsspec's WebHDFS on an ``mlwf_hdfs`` connection.

Registered through the ``filesystems`` entry of :mod:`mlwf_operators.get_provider_info`, so
``ObjectStoragePath("hdfs:///models/a", conn_id="hdfs_models")`` reads and writes HDFS with the
NameNode address and user of that connection (the one :class:`~mlwf_operators.hooks.HdfsHook` uses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from fsspec.implementations.webhdfs import WebHDFS  # type: ignore[import-untyped]  # no types

#: The URI schemes served by :func:`get_fs` (read by Airflow).
schemes = ["hdfs"]


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> WebHDFS:
    """Return a WebHDFS filesystem for connection ``conn_id`` (default ``mlwf_hdfs_default``)."""
    from fsspec.implementations.webhdfs import WebHDFS

    from mlwf_operators.hooks._errors import ConnectionConfigError
    from mlwf_operators.hooks._http import extras
    from mlwf_operators.hooks.hdfs import HdfsHook

    hook = HdfsHook(conn_id) if conn_id else HdfsHook()
    conn = hook.get_connection(hook.hdfs_conn_id)
    if not conn.login:
        raise ConnectionConfigError(
            hook.hdfs_conn_id, hook.conn_type, "field 'login' (the HDFS user) is empty"
        )
    url = urlsplit(hook.url)
    if url.path not in ("", "/"):
        # fsspec's WebHDFS always talks to <scheme>://<host>:<port>/webhdfs/v1
        raise ConnectionConfigError(
            hook.hdfs_conn_id,
            hook.conn_type,
            f"a WebHDFS URL with a path ({hook.url}) is not supported for hdfs:// paths",
        )
    timeout = float(extras(conn, hook.conn_type).get("timeout", 30))
    options: dict[str, Any] = {
        "host": url.hostname,
        "port": url.port or (443 if url.scheme == "https" else 9870),
        "user": conn.login,
        "use_https": url.scheme == "https",
        # a fresh instance per call: a connection may change between calls (fsspec caches
        # instances by their arguments otherwise)
        "skip_instance_cache": True,
        **(storage_options or {}),
    }
    fs = WebHDFS(**options)
    fs.session.request = _with_timeout(fs.session.request, timeout)
    return fs


def _with_timeout(request: Any, timeout: float) -> Any:
    """Give every request of a ``requests`` session the connection's timeout (WebHDFS sets none)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(*args, **kwargs)

    return call
