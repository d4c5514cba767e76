"""Type-hint algebra: static compatibility of two hints, run-time match of a value, readable names.

Static compatibility delegates leaf cases to :func:`beartype.door.is_subhint` (a PEP-complete
subtype relation) and adds what XCom semantics need on top of it:

* the numeric tower (``int`` is accepted where ``float`` is expected, ``int``/``float`` where
  ``complex`` is), as PEP 484 prescribes and type checkers do;
* covariant containers (XCom values are copies, so ``list[int]`` may feed ``list[float]``);
* structural ``TypedDict`` rules (beartype refuses ``TypedDict`` in subtype checks);
* gradual typing: ``Any`` on either side is compatible, and a relation beartype cannot decide is
  treated as compatible rather than reported, so the checker never reports a false error.

The run-time matcher walks containers completely (beartype's ``is_bearable`` samples one item of
a container in constant time, which is right for function decorators, wrong for validating data)
and returns the path of the first offending element.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import functools
import logging
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from beartype import BeartypeConf
from beartype.door import is_bearable, is_subhint

log = logging.getLogger(__name__)

_NUMERIC_TOWER: dict[Any, Any] = {
    float: float | int,
    complex: complex | float | int,
}
_TOWER_CONF = BeartypeConf(is_pep484_tower=True)
#: The classes an instance of a tower hint may have: what beartype's isinstance check under
#: ``is_pep484_tower`` accepts, without building a beartype checker for the hint (each process
#: builds one per hint on first use, and a DAG processor's parsing child is a new process).
_TOWER_CLASSES: dict[Any, tuple[type, ...]] = {
    float: (float, int),
    complex: (complex, float, int),
}
_UNION_ORIGINS = (Union, types.UnionType)
_SEQUENCE_ORIGINS: tuple[type, ...] = (
    list,
    set,
    frozenset,
    cabc.Sequence,
    cabc.MutableSequence,
    cabc.Set,
    cabc.MutableSet,
    cabc.Iterable,
    cabc.Collection,
)
_MAPPING_ORIGINS: tuple[type, ...] = (dict, cabc.Mapping, cabc.MutableMapping)


def is_typeddict(hint: Any) -> bool:
    """Return whether ``hint`` is a ``TypedDict`` class."""
    return typing.is_typeddict(hint)


def _union(members: Any) -> Any:
    """``Union[members]`` (a single member stays itself)."""
    return Union[tuple(members)]  # noqa: UP007 - built from a runtime tuple


def strip_annotated(hint: Any) -> Any:
    """Return ``hint`` without ``Annotated[...]`` metadata and ``NewType`` wrappers."""
    if type(hint) is type:  # a plain class, the most common hint: nothing to strip
        return hint
    while True:
        if get_origin(hint) is typing.Annotated:
            hint = get_args(hint)[0]
        elif isinstance(hint, typing.NewType):
            hint = hint.__supertype__
        else:
            return hint


def type_repr(hint: Any) -> str:
    """Name a type hint the way a Python programmer writes it (``list[int]``, ``str | None``)."""
    hint = strip_annotated(hint)
    if hint is type(None) or hint is None:
        return "None"
    if hint is Any:
        return "Any"
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in _UNION_ORIGINS:
        return " | ".join(type_repr(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__qualname__", None) or repr(origin).replace("typing.", "")
        if origin.__module__ == "collections.abc":
            name = f"collections.abc.{name}" if name not in _ABC_SHORT_NAMES else name
        if not args:
            return str(name)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{type_repr(args[0])}, ...]"
        return f"{name}[{', '.join(type_repr(a) for a in args)}]"
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


_ABC_SHORT_NAMES = {"Sequence", "Mapping", "Iterable", "Collection", "Set", "MutableSequence"}


def value_repr(value: Any, limit: int = 60) -> str:
    """Show a value briefly, with its type: ``'abc' (str)``."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type_repr(type(value))})"


# ---------------------------------------------------------------- static compatibility


def is_compatible(actual: Any, expected: Any) -> bool:
    """Return whether a value typed ``actual`` is acceptable where ``expected`` is declared."""
    if actual is expected:
        return True
    try:
        return _is_compatible_cached(actual, expected)
    except TypeError:  # an unhashable hint (e.g. Literal of a list): decide without the cache
        return _is_compatible(actual, expected)


@functools.lru_cache(maxsize=4096)
def _is_compatible_cached(actual: Any, expected: Any) -> bool:
    return _is_compatible(actual, expected)


def _is_compatible(actual: Any, expected: Any) -> bool:
    actual = strip_annotated(actual)
    expected = strip_annotated(expected)
    if expected is Any or expected is object or actual is Any:
        return True
    if actual is expected:
        return True
    a_origin, e_origin = get_origin(actual), get_origin(expected)
    if a_origin in _UNION_ORIGINS:
        return all(is_compatible(member, expected) for member in get_args(actual))
    if e_origin in _UNION_ORIGINS:
        return any(is_compatible(actual, member) for member in get_args(expected))
    if expected in _NUMERIC_TOWER and actual in (int, float, complex, bool):
        return actual in get_args(_NUMERIC_TOWER[expected]) or actual is bool
    if is_typeddict(actual) or is_typeddict(expected):
        return _typeddict_compatible(actual, expected)
    if a_origin is not None and e_origin is not None and get_args(expected):
        decided = _generic_compatible(actual, expected)
        if decided is not None:
            return decided
    try:
        return bool(is_subhint(actual, _with_tower(expected)))
    except Exception:  # beartype cannot decide this pair: stay silent rather than report wrongly
        log.debug("beartype could not relate %r to %r; treating as compatible", actual, expected)
        return True


def _with_tower(hint: Any) -> Any:
    """Widen every ``float``/``complex`` inside ``hint`` to its numeric-tower union."""
    if hint in _NUMERIC_TOWER:
        return _NUMERIC_TOWER[hint]
    origin, args = get_origin(hint), get_args(hint)
    if origin is None or not args or origin is Literal:
        return hint
    widened = tuple(a if a is Ellipsis else _with_tower(a) for a in args)
    if widened == args:
        return hint
    if origin in _UNION_ORIGINS:
        return _union(widened)
    try:
        return hint.copy_with(widened)
    except AttributeError:
        return types.GenericAlias(origin, widened)


def _generic_compatible(actual: Any, expected: Any) -> bool | None:
    """Relate two parameterized containers covariantly, or return None to let beartype decide."""
    a_origin, e_origin = get_origin(actual), get_origin(expected)
    a_args, e_args = get_args(actual), get_args(expected)
    if not (isinstance(a_origin, type) and isinstance(e_origin, type)):
        return None
    if not issubclass(a_origin, e_origin):
        return False
    if e_origin is tuple:
        if a_origin is not tuple or not a_args:
            return None
        e_variadic = len(e_args) == 2 and e_args[1] is Ellipsis
        a_variadic = len(a_args) == 2 and a_args[1] is Ellipsis
        if e_variadic:
            items = a_args[:1] if a_variadic else a_args
            return all(is_compatible(a, e_args[0]) for a in items)
        if a_variadic or len(a_args) != len(e_args):
            return False
        return all(is_compatible(a, e) for a, e in zip(a_args, e_args, strict=True))
    if e_origin in _MAPPING_ORIGINS and len(e_args) == 2 and len(a_args) == 2:
        return is_compatible(a_args[0], e_args[0]) and is_compatible(a_args[1], e_args[1])
    if len(e_args) == 1:
        if a_origin is tuple and a_args:
            items = a_args[:1] if (len(a_args) == 2 and a_args[1] is Ellipsis) else a_args
            return all(is_compatible(a, e_args[0]) for a in items)
        if len(a_args) == 1:
            return is_compatible(a_args[0], e_args[0])
    return None


def _typeddict_compatible(actual: Any, expected: Any) -> bool:
    if is_typeddict(actual) and is_typeddict(expected):
        a_hints = typing.get_type_hints(actual)
        e_hints = typing.get_type_hints(expected)
        for key in expected.__required_keys__:
            if key not in actual.__required_keys__:
                return False
        return all(
            key in a_hints and is_compatible(a_hints[key], hint) for key, hint in e_hints.items()
        )
    if is_typeddict(actual):
        origin = get_origin(expected) or expected
        if isinstance(origin, type) and origin in _MAPPING_ORIGINS:
            args = get_args(expected)
            if not args:
                return True
            values = typing.get_type_hints(actual).values()
            return is_compatible(str, args[0]) and all(is_compatible(v, args[1]) for v in values)
        return False
    # a plain mapping is not known to hold the keys a TypedDict requires
    return False


# ---------------------------------------------------------------- run-time match


def find_mismatch(value: Any, expected: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """Check ``value`` against ``expected`` completely.

    Returns None when it matches, else ``(path, offending value, hint it failed)`` where path
    locates the element inside the value (``""`` for the value itself, ``"[2]['a']"`` deeper).
    """
    if type(value) is expected:
        return None  # the common case, decided without any typing machinery
    expected = strip_annotated(expected)
    if expected is Any or expected is object:
        return None
    origin, args = get_origin(expected), get_args(expected)
    if origin in _UNION_ORIGINS:
        for member in args:
            if find_mismatch(value, member, path) is None:
                return None
        return (path, value, expected)
    if origin is Literal:
        return (
            None
            if any(value == a and type(value) is type(a) for a in args)
            else (path, value, expected)
        )
    if expected is None or expected is type(None):
        return None if value is None else (path, value, expected)
    if expected in _TOWER_CLASSES:
        return None if isinstance(value, _TOWER_CLASSES[expected]) else (path, value, expected)
    if is_typeddict(expected):
        return _typeddict_mismatch(value, expected, path)
    if origin is not None and isinstance(origin, type):
        if not isinstance(value, origin):
            return (path, value, expected)
        return _container_mismatch(value, origin, args, path)
    if type(expected) is type:
        # A plain class (no metaclass of its own: not an ABC, Protocol, Enum or TypedDict):
        # beartype's check is this isinstance, and building its checker costs more than the check.
        return None if isinstance(value, expected) else (path, value, expected)
    try:
        ok = is_bearable(value, expected, conf=_TOWER_CONF)
    except Exception:  # a hint beartype cannot check at run time: accept, never fail wrongly
        log.debug("beartype cannot check %r at run time; accepting", expected)
        return None
    return None if ok else (path, value, expected)


def _container_mismatch(
    value: Any, origin: type, args: tuple[Any, ...], path: str
) -> tuple[str, Any, Any] | None:
    if not args:
        return None
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            pairs: list[tuple[int, Any, Any]] = [(i, v, args[0]) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                return (path, value, tuple[args])  # type: ignore[valid-type]
            pairs = [(i, v, h) for i, (v, h) in enumerate(zip(value, args, strict=True))]
        for i, item, hint in pairs:
            found = find_mismatch(item, hint, f"{path}[{i}]")
            if found:
                return found
        return None
    if issubclass(origin, cabc.Mapping) and len(args) == 2:
        for key, item in value.items():
            found = find_mismatch(key, args[0], f"{path}.keys()") or find_mismatch(
                item, args[1], f"{path}[{key!r}]"
            )
            if found:
                return found
        return None
    if (
        issubclass(origin, cabc.Iterable)
        and len(args) == 1
        and not isinstance(value, cabc.Iterator)
    ):
        for i, item in enumerate(value):
            found = find_mismatch(item, args[0], f"{path}[{i}]")
            if found:
                return found
    return None


def _typeddict_mismatch(value: Any, expected: Any, path: str) -> tuple[str, Any, Any] | None:
    if not isinstance(value, cabc.Mapping):
        return (path, value, expected)
    hints = typing.get_type_hints(expected)
    for key in expected.__required_keys__:
        if key not in value:
            return (f"{path}[{key!r}]", _MISSING, hints[key])
    for key, item in value.items():
        if key in hints:
            found = find_mismatch(item, hints[key], f"{path}[{key!r}]")
            if found:
                return found
    return None


@dataclasses.dataclass(frozen=True)
class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def element_hint(hint: Any) -> Any | None:
    """The element type of an iterable hint (what ``.expand`` feeds one mapped task), else None."""
    hint = strip_annotated(hint)
    if hint is Any:
        return Any
    origin, args = get_origin(hint), get_args(hint)
    if origin in _UNION_ORIGINS:
        elements = [element_hint(a) for a in args if a is not type(None)]
        if any(e is None for e in elements) or not elements:
            return None
        return _union(elements)
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return _union(args)
    if isinstance(origin, type) and issubclass(origin, cabc.Mapping):
        return None  # mapping over a dict: Airflow feeds (key, value) pairs, left unchecked
    if isinstance(origin, type) and issubclass(origin, cabc.Iterable):
        return args[0] if args else Any
    if hint in (list, tuple, set, frozenset):
        return Any
    return None
