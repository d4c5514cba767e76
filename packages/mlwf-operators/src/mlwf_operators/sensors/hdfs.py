"""Sensor that waits for a path to appear in HDFS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue
from mlwf_types import typed

from mlwf_operators.hooks._errors import require_text
from mlwf_operators.hooks.hdfs import HdfsHook

_KINDS = ("any", "file", "directory")


@typed(inputs={"hdfs_path": str}, outputs={"return_value": str})
class HdfsPathSensor(BaseSensorOperator):
    """Wait until an HDFS path exists (optionally of a given kind); return the path."""

    template_fields: Sequence[str] = ("hdfs_path",)

    def __init__(
        self,
        *,
        hdfs_path: str,
        kind: str = "any",
        hdfs_conn_id: str = HdfsHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if kind not in _KINDS:
            raise ValueError(
                f"task {kwargs.get('task_id')!r}: argument 'kind' must be one of {_KINDS}, got {kind!r}"
            )
        self.hdfs_path = hdfs_path
        self.kind = kind
        self.hdfs_conn_id = hdfs_conn_id

    def poke(self, context: Any) -> PokeReturnValue:
        """Return done when the path exists with the wanted kind."""
        path = require_text(f"task {self.task_id!r}", "hdfs_path", self.hdfs_path)
        status = HdfsHook(self.hdfs_conn_id).status(path)
        found = status is not None and (self.kind == "any" or status["type"].lower() == self.kind)
        self.log.info("HDFS path %s: %s", path, status["type"] if status else "absent")
        return PokeReturnValue(is_done=found, xcom_value=path if found else None)
