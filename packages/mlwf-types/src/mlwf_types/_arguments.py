"""Argument discovery: the values a task receives, each under the name of the argument it feeds.

Classic operators keep their arguments in attributes, TaskFlow tasks in ``op_args`` and
``op_kwargs``, mapped tasks in their expand input and partial kwargs. Discovery yields each one
as an ``Argument`` for the checker (``_checker``), and reports what makes an argument
unreachable: a declared input the operator keeps no attribute for, or an XComArg in an
attribute Airflow does not template (it would never be resolved).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from mlwf_types._declarations import (
    FunctionShape,
    TypeDeclaration,
    operator_class,
    taskflow_function,
)
from mlwf_types._issues import IssueList
from mlwf_types._sdk import sdk, task_kind

#: Literal kinds that can hold neither an XComArg nor (but str) a template.
SCALARS = (str, int, float, bool, bytes)
_MISSING = object()


@dataclasses.dataclass(slots=True)
class Argument:
    """One value a task receives, and how: rendered from templates, mapped over, or mapped kwargs."""

    name: str
    value: Any
    templated: bool
    expanded: bool = False
    """``.expand(name=...)``: each mapped task receives one element of ``value``."""
    mapped_kwargs: bool = False
    """``.expand_kwargs(XComArg)``: ``value`` delivers a list of dicts, each one task's arguments."""


def task_arguments(
    task: Any, declaration: TypeDeclaration | None, issues: IssueList
) -> Iterator[Argument]:
    """Yield the arguments of ``task``; add an issue for each argument Airflow would never resolve."""
    if declaration is not None and declaration.shape is not None:
        yield from _taskflow_arguments(task, declaration.shape)
        return
    if taskflow_function(task) is not None:
        return  # TaskFlow whose declaration failed: already reported
    template_fields = task.template_fields
    declared = declaration.inputs if declaration else {}
    if task_kind(task)[1]:
        expand_value = task.expand_input.value
        if isinstance(expand_value, dict):
            for name, value in expand_value.items():
                yield Argument(name, value, templated=True, expanded=True)
        else:  # expand_kwargs(list of dicts, or one XCom)
            yield from _expand_kwargs_arguments(task)
        for name, value in task.partial_kwargs.items():
            if name in template_fields or name in declared:
                yield Argument(name, value, templated=name in template_fields)
            else:
                _report_unresolved(issues, task, name, value, template_fields)
        return
    for name in declared:
        attr: Any = getattr(task, name, _MISSING)
        if attr is _MISSING:
            issues.add(
                task,
                "error",
                f"{issues.where(task, name)} is declared by @typed on {declaration.source if declaration else '?'}, "
                f"but the operator keeps no attribute {name!r} (inputs name the attribute that holds the argument)",
                argument=name,
            )
        elif name in template_fields:
            yield Argument(name, attr, templated=True)
        elif _has_xcom(attr):
            _report_unresolved(issues, task, name, attr, template_fields)
        else:
            yield Argument(name, attr, templated=False)
    for name in template_fields:
        if name not in declared:
            field: Any = getattr(task, name, None)
            if _has_xcom(field):  # only XComs matter here: their keys must be declared
                yield Argument(name, field, templated=True)
    # The arguments the DAG author passed (Airflow keeps them): an XComArg among them that is
    # not in a templated field is never resolved.
    init_kwargs = getattr(task, "_BaseOperator__init_kwargs", None) or {}
    for name, value in init_kwargs.items():
        if name not in declared and name not in template_fields:
            _report_unresolved(issues, task, name, value, template_fields)


def _report_unresolved(
    issues: IssueList, task: Any, name: str, value: Any, template_fields: Sequence[str]
) -> None:
    """Report each XComArg kept in a non-templated attribute: Airflow never resolves it."""
    for producer, key in _xcom_references(value):
        issues.add(
            task,
            "error",
            f"{issues.where(task, name)} holds the XCom {key!r} of task {producer.task_id!r}, "
            f"but {name!r} is not a templated field of {operator_class(task).__name__}, so "
            f"Airflow never resolves it and the task would receive the XComArg object itself; "
            f"pass it through a templated field ({', '.join(sorted(template_fields)) or 'it has none'})",
            argument=name,
            producer=producer.task_id,
            key=key,
        )


def _taskflow_arguments(task: Any, shape: FunctionShape) -> Iterator[Argument]:
    if task_kind(task)[2]:
        op_args = task.partial_kwargs.get("op_args") or ()
        op_kwargs = task.partial_kwargs.get("op_kwargs") or {}
        expand_value = task.op_kwargs_expand_input.value
        if isinstance(expand_value, dict):
            for name, value in expand_value.items():
                yield Argument(name, value, templated=True, expanded=True)
        else:
            yield from _expand_kwargs_arguments(task)
    else:
        op_args, op_kwargs = task.op_args, task.op_kwargs
    positional = shape.positional
    for i, value in enumerate(op_args):
        if i < len(positional):
            yield Argument(positional[i], value, templated=True)
        elif shape.var_positional:
            yield Argument(f"{shape.var_positional}[{i - len(positional)}]", value, templated=True)
    for name, value in op_kwargs.items():
        if name in shape.keyword or shape.var_keyword:
            yield Argument(name, value, templated=True)


def _expand_kwargs_arguments(task: Any) -> Iterator[Argument]:
    """``expand_kwargs``: a list of dicts (literal, or one XCom), each dict one mapped task's arguments."""
    XComArg = sdk().XComArg

    value = task._get_specified_expand_input().value
    if isinstance(value, XComArg):
        yield Argument("expand_kwargs", value, templated=True, mapped_kwargs=True)
        return
    for i, kwargs in enumerate(value or ()):
        if isinstance(kwargs, dict):
            for name, item in kwargs.items():
                yield Argument(name, item, templated=True)
        else:
            yield Argument(f"expand_kwargs[{i}]", kwargs, templated=True)


def _xcom_references(value: Any) -> list[tuple[Any, str]]:
    XComArg = sdk().XComArg

    if not _has_xcom(value):
        return []
    return list(XComArg.iter_xcom_references(value))


def _has_xcom(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is an XComArg or a literal list, tuple, set or dict holding one."""
    if value is None or isinstance(value, SCALARS):
        return False
    XComArg = sdk().XComArg
    if isinstance(value, XComArg):
        return True
    if depth > 8:
        return False
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_xcom(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_has_xcom(v, depth + 1) for v in value.values())
    return False
