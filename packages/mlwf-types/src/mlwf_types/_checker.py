"""The static checker: every argument and XCom edge of a DAG against the declared types.

Which values a task receives is argument discovery's (``_arguments``); this module checks each
of them, literal or XCom, against the type the task declares for it.
"""

from __future__ import annotations

import collections.abc as cabc
import logging
import typing
from collections.abc import Mapping, Sequence
from typing import Any, get_args, get_origin

from mlwf_types._arguments import SCALARS, Argument, task_arguments
from mlwf_types._declarations import RETURN_KEY, TypeDeclaration, declaration_of
from mlwf_types._errors import TypeDeclarationError
from mlwf_types._hints import (
    _UNION_ORIGINS,
    element_hint,
    find_mismatch,
    is_compatible,
    is_typeddict,
    strip_annotated,
    type_repr,
    value_repr,
)
from mlwf_types._issues import IssueList, TypeIssue
from mlwf_types._sdk import sdk, task_kind

log = logging.getLogger(__name__)

#: The exact classes of the literals the checker's fast path takes (subclasses go the long way).
_SCALAR_TYPES = frozenset(SCALARS)


class _DagChecker:
    def __init__(self, dag: Any) -> None:
        self.dag = dag
        self.dag_id: str = dag.dag_id
        self.issues = IssueList(self.dag_id)
        self._declarations: dict[str, TypeDeclaration | None] = {}
        self._functions: dict[Any, Any] = {}  # TaskFlow functions read so far (declaration_of)

    # ------------------------------------------------------------------ declarations

    def declaration(self, task: Any) -> TypeDeclaration | None:
        if task.task_id not in self._declarations:
            try:
                self._declarations[task.task_id] = declaration_of(task, self._functions)
            except TypeDeclarationError as exc:
                self._declarations[task.task_id] = None
                self.issues.add(task, "error", f"DAG {self.dag_id!r} task {task.task_id!r}: {exc}")
        return self._declarations[task.task_id]

    # ------------------------------------------------------------------ main loop

    def run(self) -> list[TypeIssue]:
        for task in self.dag.tasks:
            try:
                self.check_task(task)
            except Exception as exc:  # a checker bug must never block a DAG: say so, as a warning
                log.warning(
                    "mlwf-types could not check %s.%s", self.dag_id, task.task_id, exc_info=True
                )
                self.issues.add(
                    task,
                    "warning",
                    f"DAG {self.dag_id!r} task {task.task_id!r}: mlwf-types could not check this task "
                    f"({type(exc).__name__}: {exc}); please report it",
                )
        return self.issues.issues

    def check_task(self, task: Any) -> None:
        declaration = self.declaration(task)
        inputs = declaration.inputs if declaration else {}
        for arg in task_arguments(task, declaration, self.issues):
            expected = inputs.get(arg.name)
            if arg.mapped_kwargs:
                self._check_mapped_kwargs(task, arg.value, inputs)
            elif arg.expanded:
                self._check_expanded(task, arg, expected)
            else:
                self._check_value(task, arg.value, expected, arg.name, arg.templated)

    def _check_mapped_kwargs(self, task: Any, value: Any, inputs: Mapping[str, Any]) -> None:
        """``expand_kwargs(XComArg)``: a TypedDict element type is checked key by key against the inputs."""
        produced = self._xcom_hint(task, value, "expand_kwargs")
        element = element_hint(produced) if produced is not None else None
        if element is None or not is_typeddict(strip_annotated(element)):
            return
        for name, hint in typing.get_type_hints(strip_annotated(element)).items():
            if name in inputs and not is_compatible(hint, inputs[name]):
                self.issues.add(
                    task,
                    "error",
                    f"{self.issues.where(task, name)} expects {type_repr(inputs[name])}, but the "
                    f"mapped arguments from expand_kwargs give it {type_repr(hint)}",
                    argument=name,
                    expected=inputs[name],
                    actual=type_repr(hint),
                )

    # ------------------------------------------------------------------ values

    def _xcom_hint(self, task: Any, arg: Any, path: str) -> Any | None:
        """The type an XComArg delivers to ``task``, or None after reporting an undeclared key."""
        MapXComArg = sdk().MapXComArg
        PlainXComArg = sdk().PlainXComArg

        if isinstance(arg, PlainXComArg):
            producer, key = arg.operator, arg.key
            if not hasattr(producer, "task_id"):
                return Any  # XComArg(XComArg(...)): not a task output Airflow can resolve
            declaration = self.declaration(producer)
            if declaration is None:
                return Any
            declared, hint = declaration.output_hint(key)
            if not declared:
                keys = ", ".join(repr(k) for k in declaration.declared_keys()) or "none"
                self.issues.add(
                    task,
                    "error",
                    f"{self.issues.where(task, path)} reads the XCom {key!r} of task {producer.task_id!r}, "
                    f"which {producer.task_id!r} does not declare (its declared keys: {keys})",
                    argument=path,
                    producer=producer.task_id,
                    key=key,
                )
                return None
            if _delivers_sequence(producer, task):
                return Sequence[hint]  # type: ignore[valid-type]
            return hint
        if isinstance(arg, MapXComArg):
            callables = list(getattr(arg, "callables", ()))
            if callables:
                try:
                    returned = typing.get_type_hints(callables[-1]).get("return", Any)
                except Exception:
                    returned = Any
                return Sequence[returned]  # type: ignore[valid-type]
        return Any  # zip/concat and other composites: element types are not tracked

    def _check_value(
        self, task: Any, value: Any, expected: Any, path: str, templated: bool
    ) -> None:
        if (value is None or type(value) in _SCALAR_TYPES) and (
            expected is None or type(value) is expected
        ):
            return  # the common literal: nothing to check, or exactly the declared class
        PlainXComArg = sdk().PlainXComArg
        XComArg = sdk().XComArg

        if isinstance(value, XComArg):
            produced = self._xcom_hint(task, value, path)
            if produced is None or expected is None or is_compatible(produced, expected):
                return
            producer = value.operator.task_id if isinstance(value, PlainXComArg) else None
            key = value.key if isinstance(value, PlainXComArg) else None
            source = (
                f"task {producer!r} pushes XCom {key!r}"
                if producer
                else "the XCom expression gives"
            )
            self.issues.add(
                task,
                "error",
                f"{self.issues.where(task, path)} expects {type_repr(expected)}, but {source} of type "
                f"{type_repr(produced)}",
                argument=path,
                producer=producer,
                key=key,
                expected=expected,
                actual=type_repr(produced),
            )
            return
        if value is None or isinstance(value, SCALARS):
            if expected is None or type(value) is expected:
                return  # the common literal: nothing to check, or exactly the declared class
        elif _is_resolvable_placeholder(value):
            return  # e.g. a MappedArgument of a mapped task group: known only at run time
        if isinstance(value, str) and templated and _is_jinja(value):
            if expected is not None and not is_compatible(str, expected):
                self.issues.add(
                    task,
                    "warning",
                    f"{self.issues.where(task, path)} expects {type_repr(expected)}, but gets the Jinja template "
                    f"{value!r}, whose rendered type is known only at run time (it is checked then)",
                    argument=path,
                    expected=expected,
                    actual="template",
                )
            return
        if isinstance(value, list | tuple | set | frozenset | dict) and _has_dynamic(
            value, templated
        ):
            self._check_container(task, value, expected, path, templated)
            return
        if expected is None:
            return
        mismatch = find_mismatch(value, expected)
        if mismatch is not None:
            where, bad, hint = mismatch
            self.issues.add(
                task,
                "error",
                f"{self.issues.where(task, path + where)} expects {type_repr(hint)}, but gets the literal "
                f"{value_repr(bad)}",
                argument=path + where,
                expected=hint,
                actual=type_repr(type(bad)),
            )

    def _check_container(
        self, task: Any, value: Any, expected: Any, path: str, templated: bool
    ) -> None:
        """Descend into a literal container that holds XComArgs or templates, element by element."""
        hint = _matching_member(value, expected) if expected is not None else None
        if expected is not None and hint is None:
            self.issues.add(
                task,
                "error",
                f"{self.issues.where(task, path)} expects {type_repr(expected)}, but gets a "
                f"{type(value).__name__}",
                argument=path,
                expected=expected,
                actual=type(value).__name__,
            )
            return
        if isinstance(value, dict):
            hints = _mapping_value_hints(hint, value)
            for key, item in value.items():
                self._check_value(task, item, hints.get(key), f"{path}[{key!r}]", templated)
            return
        for i, item in enumerate(value):
            self._check_value(task, item, _item_hint(hint, i), f"{path}[{i}]", templated)

    def _check_expanded(self, task: Any, arg: Argument, expected: Any) -> None:
        """``.expand(name=...)``: each mapped task receives one element of the value."""
        PlainXComArg = sdk().PlainXComArg
        XComArg = sdk().XComArg

        if isinstance(arg.value, XComArg):
            produced = self._xcom_hint(task, arg.value, arg.name)
            if produced is None or expected is None:
                return
            element = element_hint(produced)
            if element is None:
                base = strip_annotated(produced)
                origin = get_origin(base) or base
                is_mapping = isinstance(origin, type) and issubclass(origin, cabc.Mapping)
                if base is not Any and not is_mapping:  # mapping over a dict: left unchecked
                    self.issues.add(
                        task,
                        "error",
                        f"{self.issues.where(task, arg.name)} is expanded over an XCom of type "
                        f"{type_repr(produced)}, which is not a list",
                        argument=arg.name,
                        expected=list[expected],
                        actual=type_repr(produced),
                    )
                return
            if not is_compatible(element, expected):
                producer = (
                    arg.value.operator.task_id if isinstance(arg.value, PlainXComArg) else None
                )
                key = arg.value.key if isinstance(arg.value, PlainXComArg) else None
                self.issues.add(
                    task,
                    "error",
                    f"{self.issues.where(task, arg.name)} expects {type_repr(expected)} for each mapped task, "
                    f"but is expanded over XCom {key!r} of task {producer!r}, of type "
                    f"{type_repr(produced)} (elements {type_repr(element)})",
                    argument=arg.name,
                    producer=producer,
                    key=key,
                    expected=expected,
                    actual=type_repr(element),
                )
            return
        if isinstance(arg.value, list | tuple | set | frozenset):
            for i, item in enumerate(arg.value):
                self._check_value(task, item, expected, f"{arg.name}[{i}]", arg.templated)
        elif isinstance(arg.value, dict):
            return  # mapping over a dict's items: left unchecked
        else:
            self._check_value(task, arg.value, expected, arg.name, arg.templated)


def check_dag(dag: Any) -> list[TypeIssue]:
    """Check every argument and XCom edge of ``dag``; return all issues at once (empty when sound)."""
    return _DagChecker(dag).run()


# ---------------------------------------------------------------------- helpers


def _is_jinja(text: str) -> bool:
    return "{{" in text or "{%" in text


def _is_resolvable_placeholder(value: Any) -> bool:
    ResolveMixin = sdk().ResolveMixin

    return isinstance(value, ResolveMixin)


def _has_dynamic(value: Any, templated: bool, depth: int = 0) -> bool:
    """Whether a literal container holds an XComArg or (in a templated field) a Jinja string."""
    XComArg = sdk().XComArg

    if isinstance(value, XComArg) or _is_resolvable_placeholder(value):
        return True
    if isinstance(value, str):
        return templated and _is_jinja(value)
    if depth > 8:
        return False
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_dynamic(v, templated, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_has_dynamic(v, templated, depth + 1) for v in value.values())
    return False


def _delivers_sequence(producer: Any, consumer: Any) -> bool:
    """A mapped producer's XCom reaches a consumer outside its mapping as a lazy sequence of all results."""
    if task_kind(producer)[1]:
        return True
    group = producer.get_closest_mapped_task_group() if _in_task_group(producer) else None
    return group is not None and consumer.get_closest_mapped_task_group() is not group


def _in_task_group(task: Any) -> bool:
    """Whether the task sits in a task group other than the DAG's root (only then can it be mapped)."""
    group = getattr(task, "task_group", None)
    return group is not None and not getattr(group, "is_root", True)


def _matching_member(value: Any, expected: Any) -> Any | None:
    """The alternative of ``expected`` (a union or a single hint) that fits the container's kind."""
    expected = strip_annotated(expected)
    if expected is Any or expected is object:
        return Any
    origin = get_origin(expected)
    if origin in _UNION_ORIGINS:
        for member in get_args(expected):
            found = _matching_member(value, member)
            if found is not None:
                return found
        return None
    if is_typeddict(expected):
        return expected if isinstance(value, dict) else None
    container = origin or expected
    if isinstance(container, type) and isinstance(value, container):
        return expected
    return None


def _item_hint(hint: Any, index: int) -> Any:
    if hint is Any:
        return Any
    args = get_args(hint)
    origin = get_origin(hint)
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[index] if index < len(args) else Any
    return args[0] if len(args) == 1 else Any


def _mapping_value_hints(hint: Any, value: dict[Any, Any]) -> dict[Any, Any]:
    if hint is Any:
        return dict.fromkeys(value, Any)
    if is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        return {key: hints.get(key, Any) for key in value}
    args = get_args(hint)
    return dict.fromkeys(value, args[1] if len(args) == 2 else Any)


__all__ = ["RETURN_KEY", "TypeIssue", "check_dag"]
