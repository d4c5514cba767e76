"""Model artifacts on HDFS (WebHDFS through :class:`~mlwf_operators.hooks.HdfsHook`).

URIs are ``hdfs://<connection id>/<absolute path>``: the authority names the Airflow connection
(type ``mlwf_hdfs``) that holds the WebHDFS endpoint and user, so no cluster address is written
into a DAG; ``hdfs:///<path>`` uses the hook's default connection ``mlwf_hdfs_default``.
Registered for the ``hdfs`` scheme in :mod:`mlwf_operators.artifacts`.
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlwf_operators.artifacts import ArtifactNotFoundError, ArtifactStoreError


def parse_hdfs_uri(uri: str) -> tuple[str | None, str]:
    """Return ``(connection id or None for the default, absolute normalized path)`` of an hdfs:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme.lower() != "hdfs":
        raise ArtifactStoreError(f"{uri!r} is not an hdfs:// URI")
    path = posixpath.normpath(unquote(parsed.path) or "/")
    if not path.startswith("/") or path == "/":
        raise ArtifactStoreError(f"HDFS artifact URI {uri!r} needs an absolute path below /")
    return (parsed.netloc or None), path


class HdfsArtifactStore:
    """Artifact directories on HDFS; writes go to a hidden sibling and are renamed into place."""

    def _hook(self, conn_id: str | None) -> Any:
        from mlwf_operators.hooks.hdfs import HdfsHook

        return HdfsHook(conn_id) if conn_id else HdfsHook()

    def put_dir(self, local_dir: Path, uri: str) -> str:
        """Upload ``local_dir`` to ``uri`` (which must not exist), atomically for readers."""
        conn_id, path = parse_hdfs_uri(uri)
        hook = self._hook(conn_id)
        if hook.status(path) is not None:
            raise ArtifactStoreError(
                f"artifact location {uri} already exists; refusing to overwrite it"
            )
        parent, name = posixpath.split(path)
        partial = posixpath.join(parent, f".{name}.partial")
        if hook.status(partial) is not None:
            hook.delete(partial, recursive=True)
        hook.mkdir(parent)
        hook.upload(str(local_dir), partial)
        hook.rename(partial, path)
        return uri

    def get_dir(self, uri: str, scratch: Path) -> Path:
        """Download the artifact directory under ``scratch`` and return the local copy.

        The copy is the caller's to remove (with ``scratch``); a download that fails half-way
        removes what it wrote.
        """
        conn_id, path = parse_hdfs_uri(uri)
        hook = self._hook(conn_id)
        status = hook.status(path)
        if status is None or status.get("type") != "DIRECTORY":
            raise ArtifactNotFoundError(f"no model artifact at {uri!r} (no such HDFS directory)")
        scratch.mkdir(parents=True, exist_ok=True)
        target = scratch / "hdfs-artifact"
        try:
            return Path(hook.download(path, str(target)))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    def exists(self, uri: str) -> bool:
        """Tell whether the artifact directory exists on HDFS."""
        conn_id, path = parse_hdfs_uri(uri)
        status = self._hook(conn_id).status(path)
        return status is not None and status.get("type") == "DIRECTORY"
