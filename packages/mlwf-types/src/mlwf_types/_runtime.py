"""Run-time guards: declared inputs are checked after rendering, outputs before they are pushed.

Classic operators are guarded by ``@typed`` itself (their class's ``execute`` is wrapped), so the
guard works even without the cluster policy. Plain ``@task`` functions are guarded by the policy,
which wraps ``execute_callable`` of Airflow's TaskFlow operator class once per process: nothing is
done per task while DAGs are parsed.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlwf_types._config import Mode, current_mode
from mlwf_types._declarations import (
    DECLARATION_ATTR,
    RETURN_KEY,
    TypeDeclaration,
    taskflow_declaration,
)
from mlwf_types._errors import XComTypeError
from mlwf_types._hints import find_mismatch, type_repr, value_repr

log = logging.getLogger(__name__)

_GUARD_MARK = "__mlwf_types_guard__"
_ACTIVE_ATTR = "_mlwf_types_guard_active"


def _fail(mode: Mode, message: str) -> None:
    if mode == "warn":
        log.warning("mlwf-types: %s", message)
        return
    raise XComTypeError(message)


def _describe(dag_id: str, task_id: str) -> str:
    return f"DAG {dag_id!r} task {task_id!r}"


def check_input(mode: Mode, who: str, name: str, value: Any, hint: Any) -> None:
    """Fail (or warn) when an input value does not match its declared hint."""
    mismatch = find_mismatch(value, hint)
    if mismatch is not None:
        path, bad, expected = mismatch
        _fail(
            mode,
            f"{who} argument {name + path!r} expects {type_repr(expected)}, but received "
            f"{value_repr(bad)} at run time",
        )


def check_output(mode: Mode, who: str, declaration: TypeDeclaration, key: str, value: Any) -> None:
    """Fail (or warn) when a value about to be pushed under ``key`` does not match its declaration."""
    if declaration.outputs is None:
        return
    declared, hint = declaration.output_hint(key)
    if not declared:
        keys = ", ".join(repr(k) for k in declaration.declared_keys()) or "none"
        _fail(
            mode,
            f"{who} pushes XCom {key!r}, which it does not declare (declared: {keys}); not pushed",
        )
        return
    mismatch = find_mismatch(value, hint)
    if mismatch is not None:
        path, bad, expected = mismatch
        at = f" at {path}" if path else ""
        _fail(
            mode,
            f"{who} XCom {key!r} is declared as {type_repr(hint)}, but the task produced "
            f"{value_repr(bad)}{at}"
            + (f" where {type_repr(expected)} is expected" if path else "")
            + "; the value was not pushed",
        )


def check_result(
    mode: Mode, who: str, declaration: TypeDeclaration, result: Any, multiple_outputs: bool
) -> None:
    """Check what ``execute`` returns: ``return_value``, and each key when it pushes multiple outputs."""
    if declaration.outputs is None:
        return
    if RETURN_KEY in declaration.outputs:
        check_output(mode, who, declaration, RETURN_KEY, result)
    if multiple_outputs and isinstance(result, Mapping):
        for key, item in result.items():
            if isinstance(key, str):
                check_output(mode, who, declaration, key, item)


def guard_operator_class(cls: type) -> None:
    """Wrap ``cls.execute`` so a ``@typed`` operator validates its inputs and outputs.

    Subclasses that override ``execute`` are guarded as they are defined (an injected
    ``__init_subclass__``), so ``class Mine(TypedOperator)`` needs no decorator of its own.
    """
    _wrap_execute(cls)
    if "__init_subclass__" in cls.__dict__ and getattr(
        cls.__dict__["__init_subclass__"], _GUARD_MARK, False
    ):
        return

    owner: Any = cls

    def __init_subclass__(sub: Any, /, **kwargs: Any) -> None:
        super(owner, sub).__init_subclass__(**kwargs)
        _wrap_execute(sub)

    hook: Any = classmethod(__init_subclass__)
    setattr(__init_subclass__, _GUARD_MARK, True)
    setattr(hook, _GUARD_MARK, True)
    cls.__init_subclass__ = hook  # type: ignore[method-assign]


def _wrap_execute(cls: type) -> None:
    execute = cls.execute  # type: ignore[attr-defined]
    if getattr(execute, _GUARD_MARK, False):
        return

    @functools.wraps(execute)
    def guarded_execute(self: Any, context: Any) -> Any:
        mode = current_mode()
        declaration: TypeDeclaration | None = getattr(type(self), DECLARATION_ATTR, None)
        if mode == "off" or declaration is None or getattr(self, _ACTIVE_ATTR, False):
            return execute(self, context)
        who = _describe(getattr(self, "dag_id", "?"), self.task_id)
        for name, hint in declaration.inputs.items():
            check_input(mode, who, name, getattr(self, name, None), hint)
        ti = context.get("ti") if isinstance(context, Mapping) else None
        restore = _intercept_pushes(ti, mode, who, declaration)
        object.__setattr__(self, _ACTIVE_ATTR, True)
        try:
            result = execute(self, context)
        finally:
            object.__setattr__(self, _ACTIVE_ATTR, False)
            restore()
        check_result(mode, who, declaration, result, bool(getattr(self, "multiple_outputs", False)))
        return result

    setattr(guarded_execute, _GUARD_MARK, True)
    cls.execute = guarded_execute  # type: ignore[attr-defined]


def _intercept_pushes(
    ti: Any, mode: Mode, who: str, declaration: TypeDeclaration
) -> Callable[[], None]:
    """Check explicit ``xcom_push`` calls made during ``execute``; return a function that undoes it."""
    if ti is None or not hasattr(ti, "xcom_push"):
        return lambda: None
    original = ti.xcom_push

    def checked_push(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        check_output(mode, who, declaration, key, value)
        return original(key, value, *args, **kwargs)

    try:
        object.__setattr__(ti, "xcom_push", checked_push)
    except (
        AttributeError,
        TypeError,
    ):  # a task instance type that forbids it: returns are still checked
        return lambda: None

    def restore() -> None:
        vars(ti).pop("xcom_push", None)

    return restore


def check_taskflow_call(
    mode: Mode,
    who: str,
    declaration: TypeDeclaration,
    op_args: Sequence[Any],
    op_kwargs: Mapping[str, Any],
) -> None:
    """Check the arguments a TaskFlow function is about to be called with (Airflow context values excepted)."""
    from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS

    inputs = declaration.inputs
    positional = declaration.shape.positional if declaration.shape else ()
    bound = list(zip(positional, op_args, strict=False)) + list(op_kwargs.items())
    for name, value in bound:
        if name in inputs and name not in KNOWN_CONTEXT_KEYS:
            check_input(mode, who, name, value, inputs[name])


def install_taskflow_guard() -> None:
    """Guard every plain ``@task`` (also each task of a mapped one) in this process, once.

    Wraps ``execute_callable`` of the Task SDK's ``_PythonDecoratedOperator``: at that point the
    arguments are rendered and bound, and the return value has not been pushed yet. Installing it
    once per class costs nothing per DAG; it is inert in ``off`` mode.
    """
    try:
        from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
    except ImportError:  # the standard provider is absent: no plain @task to guard
        return
    execute_callable = _PythonDecoratedOperator.execute_callable
    if getattr(execute_callable, _GUARD_MARK, False):
        return

    @functools.wraps(execute_callable)
    def guarded_execute_callable(self: Any) -> Any:
        mode = current_mode()
        func = inspect.unwrap(self.python_callable)
        if mode == "off" or inspect.iscoroutinefunction(func):
            return execute_callable(self)
        declaration = taskflow_declaration(func, multiple_outputs=bool(self.multiple_outputs))
        who = _describe(getattr(self, "dag_id", "?"), self.task_id)
        check_taskflow_call(mode, who, declaration, self.op_args, self.op_kwargs)
        result = execute_callable(self)
        check_result(mode, who, declaration, result, bool(self.multiple_outputs))
        return result

    setattr(guarded_execute_callable, _GUARD_MARK, True)
    _PythonDecoratedOperator.execute_callable = guarded_execute_callable  # type: ignore[method-assign]
