"""The Task SDK classes the checker needs, imported once on first use.

Not at module level: Airflow imports ``mlwf_types.policy`` (and so this package) while
``import airflow`` is still running. Not inside every hot function either: an import statement
costs a dictionary lookup and a lock on every call, and the checker runs once per task per parse.
"""

from __future__ import annotations

import contextlib
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


#: What a task is, per operator class: ``(TaskFlow, mapped, mapped TaskFlow)``. ``isinstance``
#: against the Task SDK's operator classes (ABCs) costs an ABC check per call; the checker asks
#: several times per task. Kept on the class itself (its own ``__dict__``, not inherited), so it
#: lives exactly as long as the class: operator classes defined in DAG files come and go.
_KIND_ATTR = "__mlwf_types_kind__"


def task_kind(task: object) -> tuple[bool, bool, bool]:
    """Return ``(is TaskFlow, is mapped, is mapped TaskFlow)`` for a task (plain or mapped)."""
    cls = type(task)
    kind: tuple[bool, bool, bool] | None = cls.__dict__.get(_KIND_ATTR)
    if kind is None:
        s = sdk()
        kind = (
            issubclass(cls, (s.DecoratedOperator, s.DecoratedMappedOperator)),
            issubclass(cls, s.MappedOperator),
            issubclass(cls, s.DecoratedMappedOperator),
        )
        with contextlib.suppress(AttributeError, TypeError):  # a class that takes no attributes
            setattr(cls, _KIND_ATTR, kind)
    return kind
