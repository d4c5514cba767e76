"""Operators for HDFS files over WebHDFS: upload, download, list, rename, delete, mkdir."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from mlwf_types import typed

from mlwf_operators.hooks._errors import ExternalServiceError, require_text
from mlwf_operators.hooks.hdfs import HdfsHook


class _HdfsOperator(BaseOperator):
    ui_color = "#fce8b2"

    def __init__(self, *, hdfs_conn_id: str = HdfsHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hdfs_conn_id = hdfs_conn_id

    def _text(self, argument: str) -> str:
        return require_text(f"task {self.task_id!r}", argument, getattr(self, argument))

    def hook(self) -> HdfsHook:
        """Return the hook of this task's connection."""
        return HdfsHook(self.hdfs_conn_id)


@typed(
    inputs={"local_path": str, "hdfs_path": str, "overwrite": bool}, outputs={"return_value": str}
)
class HdfsUploadOperator(_HdfsOperator):
    """Upload a local file or directory to HDFS; return the HDFS path."""

    template_fields: Sequence[str] = ("local_path", "hdfs_path")

    def __init__(
        self, *, local_path: str, hdfs_path: str, overwrite: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.local_path = local_path
        self.hdfs_path = hdfs_path
        self.overwrite = overwrite

    def execute(self, context: Any) -> str:
        """Upload ``local_path`` to ``hdfs_path``."""
        return self.hook().upload(
            self._text("local_path"), self._text("hdfs_path"), overwrite=self.overwrite
        )


@typed(
    inputs={"hdfs_path": str, "local_path": str, "overwrite": bool}, outputs={"return_value": str}
)
class HdfsDownloadOperator(_HdfsOperator):
    """Download an HDFS file or directory; return the local path."""

    template_fields: Sequence[str] = ("hdfs_path", "local_path")

    def __init__(
        self, *, hdfs_path: str, local_path: str, overwrite: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.hdfs_path = hdfs_path
        self.local_path = local_path
        self.overwrite = overwrite

    def execute(self, context: Any) -> str:
        """Download ``hdfs_path`` to ``local_path``."""
        return self.hook().download(
            self._text("hdfs_path"), self._text("local_path"), overwrite=self.overwrite
        )


@typed(inputs={"hdfs_path": str}, outputs={"return_value": list[str]})
class HdfsListOperator(_HdfsOperator):
    """List the entry names of an HDFS directory."""

    template_fields: Sequence[str] = ("hdfs_path",)

    def __init__(self, *, hdfs_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hdfs_path = hdfs_path

    def execute(self, context: Any) -> list[str]:
        """Return the names in ``hdfs_path``."""
        return self.hook().list(self._text("hdfs_path"))


@typed(inputs={"source_path": str, "destination_path": str}, outputs={"return_value": str})
class HdfsRenameOperator(_HdfsOperator):
    """Move an HDFS path; return the destination path."""

    template_fields: Sequence[str] = ("source_path", "destination_path")

    def __init__(self, *, source_path: str, destination_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path
        self.destination_path = destination_path

    def execute(self, context: Any) -> str:
        """Rename ``source_path`` to ``destination_path``."""
        hook = self.hook()
        source, destination = self._text("source_path"), self._text("destination_path")
        if hook.status(source) is None:
            raise ExternalServiceError(
                "HDFS",
                f"rename {source!r} to {destination!r}",
                f"source {source!r} does not exist",
                status=None,
            )
        hook.rename(source, destination)
        return destination


@typed(
    inputs={"hdfs_path": str, "recursive": bool, "missing_ok": bool}, outputs={"return_value": bool}
)
class HdfsDeleteOperator(_HdfsOperator):
    """Delete an HDFS path; return whether something was deleted."""

    template_fields: Sequence[str] = ("hdfs_path",)

    def __init__(
        self, *, hdfs_path: str, recursive: bool = False, missing_ok: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.hdfs_path = hdfs_path
        self.recursive = recursive
        self.missing_ok = missing_ok

    def execute(self, context: Any) -> bool:
        """Delete ``hdfs_path`` (fail if it is missing unless ``missing_ok``)."""
        path = self._text("hdfs_path")
        deleted = self.hook().delete(path, recursive=self.recursive)
        if not deleted and not self.missing_ok:
            raise ExternalServiceError(
                "HDFS",
                f"delete {path!r}",
                f"{path!r} does not exist (missing_ok=False)",
                status=None,
            )
        return deleted


@typed(inputs={"hdfs_path": str}, outputs={"return_value": str})
class HdfsMkdirOperator(_HdfsOperator):
    """Create an HDFS directory with its parents; return its path."""

    template_fields: Sequence[str] = ("hdfs_path",)

    def __init__(self, *, hdfs_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hdfs_path = hdfs_path

    def execute(self, context: Any) -> str:
        """Create ``hdfs_path``."""
        path = self._text("hdfs_path")
        self.hook().mkdir(path)
        return path
