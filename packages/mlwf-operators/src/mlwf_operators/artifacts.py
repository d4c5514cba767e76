"""Where model artifacts live: a small store protocol over the local disk and Airflow's object storage.

A model artifact is a directory (the trainer's output directory). Stores copy such a directory to
a URI and back. ``file://`` URIs and plain paths use :class:`LocalArtifactStore` (no copy on
read); every other scheme goes through Airflow 3's ``ObjectStoragePath``
(:class:`ObjectStorageArtifactStore`): any scheme an installed provider registers as an Airflow
filesystem (``s3://``, ``gs://`` …) works, and mlwf-operators registers ``hdfs://``
(:mod:`mlwf_operators.fs.hdfs`). An ``hdfs://`` URI's authority names the Airflow connection
(``hdfs://<connection id>/<path>``; ``hdfs:///<path>`` uses ``mlwf_hdfs_default``); other
schemes follow Airflow's form ``<scheme>://<connection id>@<bucket>/<key>``.

Airflow is imported on first use only: the trainer and service child processes import this
module and must stay cheap.
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from mlwf_operators._errors import ArtifactNotFoundError, ArtifactStoreError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]  # fsspec ships no types

__all__ = [
    "ArtifactStore",
    "ArtifactStoreError",
    "ArtifactNotFoundError",
    "LocalArtifactStore",
    "ObjectStorageArtifactStore",
    "artifact_path",
    "artifact_store_for",
    "local_path",
    "register_artifact_store",
]


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


#: Schemes whose URI authority names an Airflow connection (not a bucket), and its default.
_AUTHORITY_IS_CONNECTION = {"hdfs": "mlwf_hdfs_default"}


def connection_and_path(uri: str) -> tuple[str | None, str]:
    """Return ``(connection id or None, absolute normalized path)`` of a ``hdfs://``-style URI."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme not in _AUTHORITY_IS_CONNECTION:
        raise ArtifactStoreError(f"{uri!r} is not an {' or '.join(_AUTHORITY_IS_CONNECTION)} URI")
    path = posixpath.normpath(unquote(parsed.path) or "/")
    if not path.startswith("/") or path == "/":
        raise ArtifactStoreError(
            f"{scheme.upper()} artifact URI {uri!r} needs an absolute path below /"
        )
    return (parsed.netloc or None), path


def artifact_path(uri: str) -> ObjectStoragePath:
    """Return the Airflow ``ObjectStoragePath`` of an artifact URI, with its connection."""
    from airflow.sdk import ObjectStoragePath

    scheme = urlparse(uri).scheme.lower()
    default_conn = _AUTHORITY_IS_CONNECTION.get(scheme)
    if default_conn is None:
        return ObjectStoragePath(uri)
    conn_id, path = connection_and_path(uri)
    return ObjectStoragePath(f"{scheme}://{path}", conn_id=conn_id or default_conn)


@contextlib.contextmanager
def _storage_errors(uri: str, action: str) -> Iterator[None]:
    """Turn the file system's errors into :class:`ArtifactStoreError` naming the URI."""
    from mlwf_operators.hooks._errors import ConnectionConfigError

    try:
        yield
    except ArtifactStoreError:
        raise
    except ConnectionConfigError as error:
        raise ArtifactStoreError(f"cannot {action} artifact {uri!r}: {error}") from error
    except FileNotFoundError as error:
        raise ArtifactNotFoundError(f"cannot {action} artifact {uri!r}: {error}") from error
    # fsspec: PermissionError, ConnectionError, ValueError (bad request), RuntimeError (any other
    # RemoteException)
    except (OSError, ValueError, RuntimeError) as error:
        raise ArtifactStoreError(
            f"cannot {action} artifact {uri!r}: {type(error).__name__}: {error}"
        ) from error


def _filesystem(path: ObjectStoragePath) -> AbstractFileSystem:
    """Return the file system of ``path`` with its connection read now.

    ``ObjectStoragePath.fs`` is the one ``airflow.sdk.io.attach`` cached for the (scheme,
    connection) pair on first use, for the life of the process, and ``attach`` cannot replace it;
    ``get_fs`` builds it afresh, so an edited connection is seen, as with a new hook per call.
    """
    from airflow.sdk.io import get_fs

    return get_fs(path.protocol or "file", path.conn_id)


class ObjectStorageArtifactStore:
    """Artifacts on any Airflow object storage (``ObjectStoragePath``: HDFS, S3, GCS …).

    Writes go to a hidden sibling ``.<name>.partial`` that is renamed into place, so readers see a
    complete artifact or none (a rename is atomic on HDFS; on object stores it is a copy).
    """

    def put_dir(self, local_dir: Path, uri: str) -> str:
        """Upload ``local_dir`` to ``uri`` (which must not exist yet); return ``uri``."""
        target = artifact_path(uri)
        with _storage_errors(uri, "store"):
            fs = _filesystem(target)
            if fs.exists(target.path):
                raise ArtifactStoreError(
                    f"artifact location {uri} already exists; refusing to overwrite it"
                )
            parent, name = posixpath.split(target.path.rstrip("/"))
            partial = posixpath.join(parent, f".{name}.partial")
            if fs.exists(partial):
                fs.rm(partial, recursive=True)
            fs.makedirs(parent, exist_ok=True)
            fs.put(str(local_dir), partial, recursive=True)
            fs.mv(partial, target.path)
        return uri

    def get_dir(self, uri: str, scratch: Path) -> Path:
        """Download the artifact under ``scratch`` and return the local copy.

        The copy is the caller's to remove (with ``scratch``); a download that fails half-way
        removes what it wrote.
        """
        source = artifact_path(uri)
        with _storage_errors(uri, "fetch"):
            fs = _filesystem(source)
            if not fs.isdir(source.path):
                raise ArtifactNotFoundError(
                    f"no model artifact at {uri!r} (no such {source.protocol} directory)"
                )
            scratch.mkdir(parents=True, exist_ok=True)
            target = scratch / f"{source.protocol}-artifact"
            try:
                fs.get(source.path, str(target), recursive=True)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
        return target

    def exists(self, uri: str) -> bool:
        """Tell whether the artifact directory exists."""
        path = artifact_path(uri)
        with _storage_errors(uri, "look up"):
            return bool(_filesystem(path).isdir(path.path))


#: Stores registered with the deprecated :func:`register_artifact_store`.
_REGISTERED: dict[str, Callable[[], ArtifactStore]] = {}


def register_artifact_store(scheme: str, factory: Callable[[], ArtifactStore]) -> None:
    """Serve URIs of ``scheme`` with stores made by ``factory``.

    .. deprecated:: 0.2
       Register an Airflow filesystem for the scheme instead (a provider's ``filesystems``
       entry): every scheme Airflow's ``ObjectStoragePath`` knows is an artifact location.
    """
    warnings.warn(
        "register_artifact_store is deprecated: register an Airflow filesystem for "
        f"{scheme!r} (a provider's 'filesystems' entry); ObjectStoragePath schemes are "
        "artifact locations without registration",
        DeprecationWarning,
        stacklevel=2,
    )
    if not scheme.isidentifier() and scheme != "":  # "" stands for plain paths, as before
        raise ValueError(f"invalid URI scheme {scheme!r}")
    _REGISTERED[scheme.lower()] = factory


def artifact_store_for(uri: str) -> ArtifactStore:
    """Return the store for ``uri``'s scheme, or fail naming what is known."""
    scheme = urlparse(uri).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme in _REGISTERED:  # a deprecated registration still overrides, "" and file too
        return _REGISTERED[scheme]()
    if scheme in ("", "file"):
        return LocalArtifactStore()
    from airflow.sdk.io import has_fs

    if has_fs(scheme):
        return ObjectStorageArtifactStore()
    registered = "".join(f", {s}://" for s in sorted(_REGISTERED))
    raise ArtifactStoreError(
        f"no artifact store for scheme {scheme!r} in {uri!r}: no Airflow filesystem is "
        f"registered for it (install the provider that registers one); known without one: "
        f"file://{registered} and plain paths"
    )
