"""The Task SDK classes the checker needs, imported once on first use.

Not at module level: Airflow imports ``mlwf_types.policy`` (and so this package) while
``import airflow`` is still running. Not inside every hot function either: an import statement
costs a dictionary lookup and a lock on every call, and the checker runs once per task per parse.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace


@functools.cache
def sdk() -> SimpleNamespace:
    """Return a namespace of the Task SDK classes (imported on the first call)."""
    from airflow.sdk.bases.decorator import DecoratedMappedOperator, DecoratedOperator
    from airflow.sdk.definitions._internal.mixins import ResolveMixin
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.sdk.definitions.xcom_arg import MapXComArg, PlainXComArg, XComArg

    return SimpleNamespace(
        DecoratedMappedOperator=DecoratedMappedOperator,
        DecoratedOperator=DecoratedOperator,
        ResolveMixin=ResolveMixin,
        MappedOperator=MappedOperator,
        MapXComArg=MapXComArg,
        PlainXComArg=PlainXComArg,
        XComArg=XComArg,
    )
