"""Where model artifacts live: a small store protocol, a local store, a registry by URI scheme.

A model artifact is a directory (the trainer's output directory). Stores copy such a directory to
a URI and back. ``file://`` URIs and plain paths use :class:`LocalArtifactStore`, ``hdfs://``
URIs the HDFS store of :mod:`mlwf_operators.artifacts_hdfs`; another scheme plugs in with
:func:`register_artifact_store`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

__all__ = [
    "ArtifactStore",
    "ArtifactStoreError",
    "ArtifactNotFoundError",
    "LocalArtifactStore",
    "register_artifact_store",
    "artifact_store_for",
    "local_path",
]


class ArtifactStoreError(Exception):
    """An artifact URI cannot be stored or fetched."""


class ArtifactNotFoundError(ArtifactStoreError):
    """No artifact exists at a URI."""


@runtime_checkable
class ArtifactStore(Protocol):
    """Copy artifact directories between the local disk and URIs of one scheme."""

    def put_dir(self, local_dir: Path, uri: str) -> str:
        """Copy ``local_dir`` to ``uri`` (which must not exist yet); return the stored URI."""
        ...

    def get_dir(self, uri: str, scratch: Path) -> Path:
        """Return a local directory holding the artifact at ``uri`` (copied under ``scratch`` if needed)."""
        ...

    def exists(self, uri: str) -> bool:
        """Tell whether an artifact exists at ``uri``."""
        ...


def local_path(uri: str) -> Path:
    """Return the local path of a ``file://`` URI or a plain path."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ArtifactStoreError(
                f"file URI {uri!r} names host {parsed.netloc!r}; only local files are supported"
            )
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri).expanduser().resolve()
    raise ArtifactStoreError(f"{uri!r} is not a local path or file:// URI")


class LocalArtifactStore:
    """Artifacts on the local file system (``file://`` URIs or plain paths)."""

    def put_dir(self, local_dir: Path, uri: str) -> str:
        """Copy ``local_dir`` to ``uri`` atomically (a temporary sibling, then a rename)."""
        target = local_path(uri)
        if target.exists():
            raise ArtifactStoreError(
                f"artifact location {target} already exists; refusing to overwrite it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(local_dir, partial)
        partial.rename(target)
        return target.as_uri()

    def get_dir(self, uri: str, scratch: Path) -> Path:
        """Return the artifact's own directory (no copy is needed locally)."""
        path = local_path(uri)
        if not path.is_dir():
            raise ArtifactNotFoundError(
                f"no model artifact at {uri!r} (directory {path} does not exist)"
            )
        return path

    def exists(self, uri: str) -> bool:
        """Tell whether the artifact directory exists."""
        return local_path(uri).is_dir()


def _hdfs_store() -> ArtifactStore:
    from mlwf_operators.artifacts_hdfs import HdfsArtifactStore  # imports the HDFS client lazily

    return HdfsArtifactStore()


_STORES: dict[str, Callable[[], ArtifactStore]] = {
    "": LocalArtifactStore,
    "file": LocalArtifactStore,
    "hdfs": _hdfs_store,
}


def register_artifact_store(scheme: str, factory: Callable[[], ArtifactStore]) -> None:
    """Serve URIs of ``scheme`` (e.g. ``"hdfs"``) with stores made by ``factory``."""
    if not scheme.isidentifier() and scheme != "":
        raise ValueError(f"invalid URI scheme {scheme!r}")
    _STORES[scheme.lower()] = factory


def artifact_store_for(uri: str) -> ArtifactStore:
    """Return the store for ``uri``'s scheme, or fail naming the schemes that are known."""
    scheme = urlparse(uri).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    try:
        factory = _STORES[scheme]
    except KeyError:
        known = ", ".join(sorted(f"{s}://" for s in _STORES if s))
        raise ArtifactStoreError(
            f"no artifact store for scheme {scheme!r} in {uri!r}; known: {known} and plain paths"
        ) from None
    return factory()
