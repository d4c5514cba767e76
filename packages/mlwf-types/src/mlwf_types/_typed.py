"""``@typed``: declare an operator class's input and output types, and guard its ``execute``.

Above both halves of the package it joins: the declaration it stores is read by the checker
(``_declarations``), and the guard it installs is the run-time check (``_runtime``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from beartype.door import TypeHint

from mlwf_types._declarations import DECLARATION_ATTR, TypeDeclaration
from mlwf_types._errors import TypeDeclarationError
from mlwf_types._runtime import guard_operator_class

OperatorT = TypeVar("OperatorT", bound=type)


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
        guard_operator_class(cls)
        return cls

    return decorate
