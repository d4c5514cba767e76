"""Where a task's input and output types come from: ``@typed`` on operator classes, annotations on TaskFlow.

This module reads declarations; ``mlwf_types._typed`` holds the ``@typed`` decorator that writes them.

Classic operators declare ``inputs`` (keyed by the attribute the operator keeps the argument in,
which by Airflow convention is the constructor argument's name) and ``outputs`` (keyed by XCom
key; ``return_value`` is what ``execute`` returns). TaskFlow functions need no decorator: their
parameter annotations are the inputs and the return annotation is ``return_value``; with
``multiple_outputs`` each key of a ``TypedDict`` (or every key of a ``dict[str, T]``) is an output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, get_args, get_origin

from mlwf_types._errors import TypeDeclarationError
from mlwf_types._hints import is_typeddict, strip_annotated
from mlwf_types._sdk import sdk

RETURN_KEY = "return_value"
DECLARATION_ATTR = "__mlwf_types__"


@dataclasses.dataclass(frozen=True)
class TypeDeclaration:
    """The declared input and output types of one operator class or TaskFlow function.

    ``outputs is None`` means the producer declares nothing (untyped: its XComs are not checked);
    ``any_key_output`` types every XCom key that ``outputs`` does not name (``dict[str, T]``).
    """

    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] | None
    any_key_output: Any | None = None
    source: str = ""
    shape: FunctionShape | None = None
    """For TaskFlow functions, how op_args and op_kwargs bind to parameters."""

    def output_hint(self, key: str) -> tuple[bool, Any]:
        """Return ``(declared, hint)`` for an XCom key."""
        if self.outputs is None:
            return True, Any
        if key in self.outputs:
            return True, self.outputs[key]
        if self.any_key_output is not None:
            return True, self.any_key_output
        return False, None

    def declared_keys(self) -> list[str]:
        """The XCom keys this producer declares, for messages."""
        return sorted(self.outputs or ())


def _python_callable(task: Any) -> Callable[..., Any] | None:
    """The user function of a TaskFlow task (plain or mapped), else None."""
    DecoratedMappedOperator = sdk().DecoratedMappedOperator
    DecoratedOperator = sdk().DecoratedOperator

    if isinstance(task, DecoratedOperator | DecoratedMappedOperator):
        func = task.python_callable
        return inspect.unwrap(func) if callable(func) else None
    return None


def operator_class(task: Any) -> type:
    """The operator class of a task, looking through mapped operators."""
    MappedOperator = sdk().MappedOperator

    if isinstance(task, MappedOperator):
        cls: type = task.operator_class
        return cls
    return type(task)


def declaration_of(task: Any) -> TypeDeclaration | None:
    """The declared types of a task (classic ``@typed`` operator or TaskFlow), or None if untyped."""
    func = _python_callable(task)
    if func is not None:
        return taskflow_declaration(
            func, multiple_outputs=bool(getattr(task, "multiple_outputs", False))
        )
    declaration: TypeDeclaration | None = getattr(operator_class(task), DECLARATION_ATTR, None)
    return declaration


@dataclasses.dataclass(frozen=True)
class FunctionShape:
    """A TaskFlow function's parameters, read from its code object (much cheaper than inspect.signature)."""

    positional: tuple[str, ...]
    """Names that op_args bind to, in order (positional-only and positional-or-keyword)."""
    var_positional: str | None
    keyword: frozenset[str]
    """Names op_kwargs may bind to by name."""
    var_keyword: str | None


_INFO_ATTR = "__mlwf_types_info__"
_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08


def function_shape(func: Callable[..., Any]) -> FunctionShape:
    """The parameter layout of a plain Python function."""
    code = getattr(func, "__code__", None)
    if code is None:  # a callable object: fall back to inspect
        return _shape_from_signature(inspect.signature(func))
    names = code.co_varnames
    n_pos, n_kwonly = code.co_argcount, code.co_kwonlyargcount
    index = n_pos + n_kwonly
    var_positional = var_keyword = None
    if code.co_flags & _CO_VARARGS:
        var_positional = names[index]
        index += 1
    if code.co_flags & _CO_VARKEYWORDS:
        var_keyword = names[index]
    positional = names[:n_pos]
    keyword = frozenset(names[code.co_posonlyargcount : n_pos + n_kwonly])
    return FunctionShape(positional, var_positional, keyword, var_keyword)


def _shape_from_signature(signature: inspect.Signature) -> FunctionShape:
    kinds = inspect.Parameter
    params = list(signature.parameters.values())
    return FunctionShape(
        positional=tuple(
            p.name for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ),
        var_positional=next((p.name for p in params if p.kind is kinds.VAR_POSITIONAL), None),
        keyword=frozenset(
            p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
        ),
        var_keyword=next((p.name for p in params if p.kind is kinds.VAR_KEYWORD), None),
    )


def taskflow_declaration(func: Callable[..., Any], *, multiple_outputs: bool) -> TypeDeclaration:
    """Read a TaskFlow function's annotations as a declaration.

    The result is memoized on the function object itself, so it lives exactly as long as the
    function (no global cache keeps parsed DAG modules alive).
    """
    memo: dict[bool, TypeDeclaration] | None = getattr(func, _INFO_ATTR, None)
    if memo is not None and multiple_outputs in memo:
        return memo[multiple_outputs]
    declaration = _taskflow_declaration(func, multiple_outputs)
    if memo is None:
        memo = {}
        with contextlib.suppress(AttributeError, TypeError):  # some callables take no attributes
            setattr(func, _INFO_ATTR, memo)
    memo[multiple_outputs] = declaration
    return declaration


@functools.lru_cache(maxsize=2048)
def _compiled(annotation: str) -> Any:
    return compile(annotation, "<annotation>", "eval")


def resolve_annotations(func: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations with strings evaluated (``from __future__ import annotations``).

    Evaluation reuses compiled code objects across functions and files, which makes this several
    times cheaper than ``typing.get_type_hints``; anything unusual falls back to it.
    """
    annotations = getattr(func, "__annotations__", None) or {}
    if not any(isinstance(a, str) for a in annotations.values()):
        return dict(annotations)
    namespace = getattr(func, "__globals__", {})
    try:
        return {
            name: eval(_compiled(a), namespace) if isinstance(a, str) else a
            for name, a in annotations.items()
        }
    except Exception:
        return typing.get_type_hints(func, include_extras=True)


def _taskflow_declaration(func: Callable[..., Any], multiple_outputs: bool) -> TypeDeclaration:
    name = getattr(func, "__qualname__", repr(func))
    try:
        hints = resolve_annotations(func)
    except Exception as exc:
        raise TypeDeclarationError(
            f"TaskFlow function {name}: its annotations cannot be resolved ({type(exc).__name__}: {exc})"
        ) from None
    shape = function_shape(func)
    excluded = {shape.var_positional, shape.var_keyword, "return"}
    inputs = {p: hint for p, hint in hints.items() if p not in excluded}
    if "return" not in hints:
        return TypeDeclaration(inputs=inputs, outputs=None, source=name, shape=shape)
    returned = hints["return"]
    outputs: dict[str, Any] = {RETURN_KEY: returned}
    any_key: Any | None = None
    base = strip_annotated(returned)
    if multiple_outputs:
        if is_typeddict(base):
            outputs.update(_typeddict_hints(base))
        elif (get_origin(base) or base) in (dict, Mapping) and len(get_args(base)) == 2:
            any_key = get_args(base)[1]
        else:
            any_key = Any
    return TypeDeclaration(
        inputs=inputs, outputs=outputs, any_key_output=any_key, source=name, shape=shape
    )


def _typeddict_hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def taskflow_function(task: Any) -> Callable[..., Any] | None:
    """The user function of a TaskFlow task, or None for classic operators."""
    return _python_callable(task)
