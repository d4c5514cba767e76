"""Where a task's input and output types come from: ``@typed`` on operator classes, annotations on TaskFlow.

This module reads declarations; ``mlwf_types._typed`` holds the ``@typed`` decorator that writes them.

Classic operators declare ``inputs`` (keyed by the attribute the operator keeps the argument in,
which by Airflow convention is the constructor argument's name) and ``outputs`` (keyed by XCom
key; ``return_value`` is what ``execute`` returns). TaskFlow functions need no decorator: their
parameter annotations are the inputs and the return annotation is ``return_value``; with
``multiple_outputs`` each key of a ``TypedDict`` (or every key of a ``dict[str, T]``) is an output.
"""

from __future__ import annotations

import builtins
import dataclasses
import dis
import functools
import inspect
import typing
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, get_args, get_origin

from mlwf_types._errors import TypeDeclarationError
from mlwf_types._hints import is_typeddict, strip_annotated
from mlwf_types._sdk import task_kind

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
    if task_kind(task)[0]:
        func: Callable[..., Any] | None = task.python_callable
        if not callable(func):
            return None
        return inspect.unwrap(func) if hasattr(func, "__wrapped__") else func
    return None


def operator_class(task: Any) -> type:
    """The operator class of a task, looking through mapped operators."""
    if task_kind(task)[1]:
        cls: type = task.operator_class
        return cls
    return type(task)


def declaration_of(
    task: Any, memo: MutableMapping[Any, Any] | None = None
) -> TypeDeclaration | None:
    """The declared types of a task (classic ``@typed`` operator or TaskFlow), or None if untyped.

    ``memo`` (optional: an empty dict the caller keeps for as long as the tasks it asks about,
    its contents opaque) saves reading the same TaskFlow function again for another task built
    from it (``for`` loops).
    """
    func = _python_callable(task)
    if func is not None:
        multiple_outputs = bool(getattr(task, "multiple_outputs", False))
        if memo is None:
            return taskflow_declaration(func, multiple_outputs=multiple_outputs)
        key = (id(func), multiple_outputs)
        found = memo.get(key)
        if found is None or found[0] is not func:
            found = memo[key] = (
                func,
                taskflow_declaration(func, multiple_outputs=multiple_outputs),
            )
        result: TypeDeclaration = found[1]
        return result
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

    Not memoized on the function: most TaskFlow functions make one task, and giving each a
    memo cost more than reading it (``types_overhead``). The checker keeps a memo per DAG
    (``declaration_of(task, memo)``), which covers one function making many tasks.
    """
    return _taskflow_declaration(func, multiple_outputs)


@functools.lru_cache(maxsize=2048)
def _compiled(annotation: str) -> tuple[Any, tuple[str, ...] | None]:
    """The annotation's code, and the names it loads when those are all it reads (else None).

    ``list[float]`` reads only the names ``list`` and ``float``; ``typing.Optional[int]`` also
    reads an attribute, so its result cannot be told from the names' values alone.
    """
    code = compile(annotation, "<annotation>", "eval")
    plain = all(ins.opname in _PLAIN_OPS for ins in dis.get_instructions(code))
    return code, (code.co_names if plain else None)


#: Opcodes of an annotation built from names and constants: ``X``, ``X[Y, Z]``, ``X | None``,
#: ``Literal["a"]``, ``X[Y][Z]`` (the string itself holds the constants).
_PLAIN_OPS = frozenset(
    {
        "RESUME",
        "CACHE",
        "LOAD_NAME",
        "LOAD_CONST",
        "BINARY_SUBSCR",
        "BUILD_TUPLE",
        "BINARY_OP",
        "RETURN_VALUE",
    }
)
#: Evaluated annotations, by (string, the ids of its names' values); only for names whose values
#: are objects of the ``builtins``, ``typing`` and ``collections.abc`` modules, which live as long
#: as the interpreter: the cache keeps nothing of a DAG file alive, and an id is never reused.
_EVALUATED: dict[tuple[str, tuple[int, ...]], Any] = {}
_EVALUATED_MAX = 4096
_MISSING = object()


@functools.cache
def _long_lived() -> dict[int, Any]:
    """The objects of ``builtins``, ``typing`` and ``collections.abc``, by id, held here so that
    an id stays theirs even if a module attribute is rebound later (``builtins._`` in a REPL)."""
    import collections.abc

    return {
        id(value): value
        for module in (builtins, typing, collections.abc)
        for value in vars(module).values()
    }


def _evaluate(annotation: str, namespace: dict[str, Any]) -> Any:
    """``eval`` an annotation string in a function's globals, reusing the result where that is safe."""
    code, names = _compiled(annotation)
    builtin_names = vars(builtins)
    if names is None or namespace.get("__builtins__", builtins) not in (builtins, builtin_names):
        return eval(code, namespace)  # attributes read, or a module with its own builtins
    safe = _long_lived()
    ids = []
    for name in names:
        value = namespace[name] if name in namespace else builtin_names.get(name, _MISSING)
        if id(value) not in safe:
            return eval(code, namespace)
        ids.append(id(value))
    key = (annotation, tuple(ids))
    hint = _EVALUATED.get(key, _MISSING)
    if hint is _MISSING:
        hint = eval(code, namespace)
        if len(_EVALUATED) < _EVALUATED_MAX:
            _EVALUATED[key] = hint
    return hint


def resolve_annotations(func: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations with strings evaluated (``from __future__ import annotations``).

    Evaluation reuses compiled code objects across functions and files, and the value of an
    annotation made only of names of ``builtins``, ``typing`` and ``collections.abc``
    (``list[float]``, ``Optional[str]``), which makes this several times cheaper than
    ``typing.get_type_hints``; anything unusual falls back to it.
    """
    annotations = getattr(func, "__annotations__", None) or {}
    if not any(isinstance(a, str) for a in annotations.values()):
        return dict(annotations)
    namespace = getattr(func, "__globals__", {})
    try:
        return {
            name: _evaluate(a, namespace) if isinstance(a, str) else a
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
