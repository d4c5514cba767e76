"""Where a task's input and output types come from: ``@typed`` on operator classes, annotations on TaskFlow.

Classic operators declare ``inputs`` (keyed by the attribute the operator keeps the argument in,
which by Airflow convention is the constructor argument's name) and ``outputs`` (keyed by XCom
key; ``return_value`` is what ``execute`` returns). TaskFlow functions need no decorator: their
parameter annotations are the inputs and the return annotation is ``return_value``; with
``multiple_outputs`` each key of a ``TypedDict`` (or every key of a ``dict[str, T]``) is an output.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

from beartype.door import TypeHint

from mlwf_types._errors import TypeDeclarationError
from mlwf_types._hints import is_typeddict, strip_annotated

RETURN_KEY = "return_value"
DECLARATION_ATTR = "__mlwf_types__"

OperatorT = TypeVar("OperatorT", bound=type)


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


def _validate_hint(owner: str, role: str, name: str, hint: Any) -> None:
    try:
        TypeHint(hint)
    except Exception as exc:
        raise TypeDeclarationError(
            f"{owner}: {role} {name!r} is declared as {hint!r}, which is not a type hint ({exc})"
        ) from None


def typed(
    *,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Callable[[OperatorT], OperatorT]:
    """Declare an operator class's input types (by argument) and output types (by XCom key).

    The class's ``execute`` is guarded at run time: inputs are checked after template rendering,
    the returned value and every pushed XCom are checked before Airflow stores them.
    Declarations are inherited; a subclass decorated again adds to or overrides its parent's.
    """

    def decorate(cls: OperatorT) -> OperatorT:
        owner = f"@typed on {cls.__qualname__}"
        if not isinstance(cls, type):
            raise TypeDeclarationError(f"{owner}: @typed decorates operator classes, not {cls!r}")
        parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
        open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        for name, hint in (inputs or {}).items():
            if name not in parameters and not open_kwargs:
                known = ", ".join(p for p in parameters if p != "self")
                raise TypeDeclarationError(
                    f"{owner}: input {name!r} is not an argument of {cls.__qualname__}.__init__ "
                    f"(its arguments: {known})"
                )
            _validate_hint(owner, "input", name, hint)
        for key, hint in (outputs or {}).items():
            if not isinstance(key, str) or not key:
                raise TypeDeclarationError(
                    f"{owner}: output keys are XCom keys (non-empty str), got {key!r}"
                )
            _validate_hint(owner, "output", key, hint)
        parent: TypeDeclaration | None = getattr(cls, DECLARATION_ATTR, None)
        merged_inputs = {**(parent.inputs if parent else {}), **(inputs or {})}
        parent_outputs = parent.outputs if parent and parent.outputs is not None else {}
        merged_outputs = {**parent_outputs, **(outputs or {})}
        declaration = TypeDeclaration(
            inputs=merged_inputs,
            outputs=merged_outputs if (outputs is not None or parent_outputs) else None,
            source=cls.__qualname__,
        )
        setattr(cls, DECLARATION_ATTR, declaration)
        from mlwf_types._runtime import guard_operator_class

        guard_operator_class(cls)
        return cls

    return decorate


def _python_callable(task: Any) -> Callable[..., Any] | None:
    """The user function of a TaskFlow task (plain or mapped), else None."""
    from airflow.sdk.bases.decorator import DecoratedMappedOperator, DecoratedOperator

    if isinstance(task, DecoratedOperator | DecoratedMappedOperator):
        func = task.python_callable
        return inspect.unwrap(func) if callable(func) else None  # type: ignore[no-any-return]
    return None


def operator_class(task: Any) -> type:
    """The operator class of a task, looking through mapped operators."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

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


def taskflow_declaration(func: Callable[..., Any], *, multiple_outputs: bool) -> TypeDeclaration:
    """Read a TaskFlow function's annotations as a declaration."""
    return _taskflow_declaration(func, multiple_outputs)


@functools.lru_cache(maxsize=8192)
def _taskflow_declaration(func: Callable[..., Any], multiple_outputs: bool) -> TypeDeclaration:
    name = getattr(func, "__qualname__", repr(func))
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise TypeDeclarationError(
            f"TaskFlow function {name}: its annotations cannot be resolved ({type(exc).__name__}: {exc})"
        ) from None
    signature = inspect.signature(func)
    inputs = {
        p: hints[p]
        for p, param in signature.parameters.items()
        if p in hints
        and param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    if "return" not in hints:
        return TypeDeclaration(inputs=inputs, outputs=None, source=name)
    returned = hints["return"]
    outputs: dict[str, Any] = {RETURN_KEY: returned}
    any_key: Any | None = None
    base = strip_annotated(returned)
    if multiple_outputs:
        if is_typeddict(base):
            outputs.update(typing.get_type_hints(base, include_extras=True))
        elif (get_origin(base) or base) in (dict, Mapping) and len(get_args(base)) == 2:
            any_key = get_args(base)[1]
        else:
            any_key = Any
    return TypeDeclaration(inputs=inputs, outputs=outputs, any_key_output=any_key, source=name)


def taskflow_signature(task: Any) -> inspect.Signature | None:
    """The signature of a TaskFlow task's function, or None for classic operators."""
    func = _python_callable(task)
    return inspect.signature(func) if func is not None else None
