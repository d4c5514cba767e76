"""find_mismatch decides plain classes and the numeric tower as beartype does."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from beartype import BeartypeConf
from beartype.door import is_bearable
from mlwf_types import find_mismatch


@dataclasses.dataclass
class _Point:
    x: int


class _Text(str):
    pass


VALUES: list[Any] = [
    True,
    0,
    3,
    2.5,
    float("nan"),
    1j,
    "s",
    _Text("t"),
    b"b",
    None,
    [1],
    {"a": 1},
    (1,),
    _Point(1),
    datetime.date(2026, 1, 1),
    datetime.datetime(2026, 1, 1),
]
HINTS: list[Any] = [
    int,
    float,
    complex,
    bool,
    str,
    _Text,
    bytes,
    list,
    dict,
    tuple,
    object,
    _Point,
    datetime.date,
    datetime.datetime,
]


@pytest.mark.parametrize("hint", HINTS, ids=lambda h: h.__name__)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_plain_classes_and_the_tower_match_beartype(value: Any, hint: Any) -> None:
    """A value matches a plain class or a tower hint exactly when beartype's tower check says so."""
    expected = is_bearable(value, hint, conf=BeartypeConf(is_pep484_tower=True))
    assert (find_mismatch(value, hint) is None) is expected


def test_a_mismatch_names_the_value_and_the_hint() -> None:
    """A plain-class mismatch reports the value itself, at the top level, with the hint."""
    assert find_mismatch("3", float) == ("", "3", float)
    assert find_mismatch(_Point(1), datetime.date) == ("", _Point(1), datetime.date)
    assert find_mismatch([1, "x"], list[float]) == ("[1]", "x", float)
