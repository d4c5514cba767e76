"""HDFS through WebHDFS with the ``hdfs`` (HdfsCLI) client."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import requests
from airflow.sdk import BaseHook
from hdfs import HdfsError, InsecureClient  # type: ignore[import-untyped]  # HdfsCLI ships no types

from mlwf_operators.hooks._errors import ConnectionConfigError, ExternalServiceError
from mlwf_operators.hooks._http import StatusRecorder, base_url, extras

T = TypeVar("T")


class HdfsHook(BaseHook):
    """Talk to HDFS over WebHDFS.

    Connection (type ``mlwf_hdfs``): ``host`` the NameNode (or a full ``http(s)://`` URL),
    ``port`` its HTTP port (default 9870), ``login`` the HDFS user (simple authentication),
    extra ``{"schema": "http" | "https", "timeout": seconds}``.
    """

    conn_name_attr = "hdfs_conn_id"
    default_conn_name = "mlwf_hdfs_default"
    conn_type = "mlwf_hdfs"
    hook_name = "HDFS (WebHDFS, mlwf)"

    def __init__(self, hdfs_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.hdfs_conn_id = hdfs_conn_id
        self._status = StatusRecorder()

    @cached_property
    def url(self) -> str:
        """The WebHDFS base URL of the connection."""
        conn = self.get_connection(self.hdfs_conn_id)
        extra = extras(conn, self.conn_type)
        scheme = extra.get("schema", extra.get("scheme", "http"))
        if scheme not in ("http", "https"):
            raise ConnectionConfigError(
                self.hdfs_conn_id,
                self.conn_type,
                f"extra 'schema' must be 'http' or 'https', got {scheme!r}",
            )
        return base_url(conn, self.conn_type, default_port=9870, default_scheme=str(scheme))

    def get_conn(self) -> InsecureClient:
        """Return an ``hdfs.InsecureClient`` for the connection."""
        conn = self.get_connection(self.hdfs_conn_id)
        if not conn.login:
            raise ConnectionConfigError(
                self.hdfs_conn_id, self.conn_type, "field 'login' (the HDFS user) is empty"
            )
        timeout = extras(conn, self.conn_type).get("timeout", 30)
        session = requests.Session()
        self._status.attach(session)
        return InsecureClient(self.url, user=conn.login, timeout=float(timeout), session=session)

    @cached_property
    def client(self) -> InsecureClient:
        """The client, created on first use."""
        return self.get_conn()

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        self._status.reset()
        try:
            return call()
        except HdfsError as error:
            kind = getattr(error, "exception", None)
            detail = f"{kind}: {error.message}" if kind else str(error.message)
            status = (
                self._status.status if kind else None
            )  # no RemoteException: refused client-side
            raise ExternalServiceError("HDFS", operation, detail, status=status) from error
        except requests.RequestException as error:
            raise ExternalServiceError(
                "HDFS", operation, f"cannot reach WebHDFS at {self.url}: {error}", status=None
            ) from error

    # operations ----------------------------------------------------------------------------
    def upload(self, local_path: str, hdfs_path: str, *, overwrite: bool = False) -> str:
        """Upload local file or directory ``local_path`` to ``hdfs_path``; return the remote path."""
        result: str = self._call(
            f"upload {local_path!r} to {hdfs_path!r}",
            lambda: self.client.upload(hdfs_path, local_path, overwrite=overwrite),
        )
        return result

    def download(self, hdfs_path: str, local_path: str, *, overwrite: bool = False) -> str:
        """Download ``hdfs_path`` to ``local_path``; return the local path written."""
        result: str = self._call(
            f"download {hdfs_path!r} to {local_path!r}",
            lambda: self.client.download(hdfs_path, local_path, overwrite=overwrite),
        )
        return result

    def list(self, hdfs_path: str) -> list[str]:
        """Return the names of the entries of directory ``hdfs_path``."""
        names: list[str] = self._call(f"list {hdfs_path!r}", lambda: self.client.list(hdfs_path))
        return names

    def status(self, hdfs_path: str) -> dict[str, Any] | None:
        """Return the FileStatus of ``hdfs_path``, or ``None`` if it does not exist."""
        status: dict[str, Any] | None = self._call(
            f"status {hdfs_path!r}", lambda: self.client.status(hdfs_path, strict=False)
        )
        return status

    def rename(self, source_path: str, destination_path: str) -> None:
        """Move ``source_path`` to ``destination_path`` (into it when it is a directory)."""
        self._call(
            f"rename {source_path!r} to {destination_path!r}",
            lambda: self.client.rename(source_path, destination_path),
        )

    def delete(self, hdfs_path: str, *, recursive: bool = False) -> bool:
        """Delete ``hdfs_path``; return whether something was deleted."""
        deleted: bool = self._call(
            f"delete {hdfs_path!r}", lambda: self.client.delete(hdfs_path, recursive=recursive)
        )
        return deleted

    def mkdir(self, hdfs_path: str) -> None:
        """Create directory ``hdfs_path`` and its missing parents."""
        self._call(f"mkdir {hdfs_path!r}", lambda: self.client.makedirs(hdfs_path))
