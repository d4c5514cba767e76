"""Model artifacts on HDFS: kept for compatibility, HDFS is an ordinary Airflow filesystem now.

``hdfs://<connection id>/<absolute path>`` URIs are served by
:class:`~mlwf_operators.artifacts.ObjectStorageArtifactStore` through Airflow's
``ObjectStoragePath`` and the ``hdfs`` filesystem of :mod:`mlwf_operators.fs.hdfs`.

.. deprecated:: 0.2
   Use :func:`mlwf_operators.artifacts.artifact_store_for` (or ``ObjectStorageArtifactStore``).
"""

from __future__ import annotations

from mlwf_operators.artifacts import ObjectStorageArtifactStore, connection_and_path

__all__ = ["HdfsArtifactStore", "parse_hdfs_uri"]


def parse_hdfs_uri(uri: str) -> tuple[str | None, str]:
    """Return ``(connection id or None for the default, absolute normalized path)`` of an hdfs:// URI."""
    return connection_and_path(uri)


class HdfsArtifactStore(ObjectStorageArtifactStore):
    """Artifact directories on HDFS (an :class:`ObjectStorageArtifactStore` for ``hdfs://`` URIs)."""
