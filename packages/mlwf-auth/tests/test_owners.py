"""Owned DAGs (constructor instances): sources read through the TTL, failures, bounds, settings."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from mlwf_auth import _owners
from mlwf_auth._errors import AuthConfigError
from mlwf_auth._owners import Ownership, installed_sources

RECSYS = frozenset({"recsys"})
FRAUD = frozenset({"fraud"})


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_owners_come_from_every_source_and_are_reread_after_the_ttl() -> None:
    """Issue 13: groups own the DAGs their sources name; a new instance counts after the TTL, not before."""
    store = {"recsys_churn": ["recsys"], "shared": ["recsys"]}
    calls: list[int] = []

    def constructors() -> Iterable[tuple[str, Iterable[str]]]:
        calls.append(1)
        return list(store.items())

    clock = Clock()
    owners = Ownership(
        {"constructors": constructors, "other": lambda: [("shared", ["fraud"])]},
        ttl=10,
        clock=clock,
    )
    assert owners.owns(RECSYS, "recsys_churn") and not owners.owns(FRAUD, "recsys_churn")
    assert owners.owns(RECSYS, "shared") and owners.owns(FRAUD, "shared")
    assert owners.owned(RECSYS, ["recsys_churn", "shared", "x"]) == {"recsys_churn", "shared"}
    assert owners.owned(frozenset({"guests"}), ["recsys_churn"]) == set()
    assert owners.owns_any(FRAUD) and not owners.owns_any(frozenset({"guests"}))
    store["fraud_new"] = ["fraud"]
    clock.now = 9.9
    assert not owners.owns(FRAUD, "fraud_new") and len(calls) == 1  # cached
    clock.now = 10.0
    assert owners.owns(FRAUD, "fraud_new") and len(calls) == 2


def test_a_failing_source_keeps_its_last_answer(caplog: pytest.LogCaptureFixture) -> None:
    """A source that raises (the database is down) keeps what it said last, logged; no request fails."""
    answers: list[object] = [[("a", ["recsys"])], RuntimeError("database is down")]

    def source() -> Iterable[tuple[str, Iterable[str]]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    clock = Clock()
    owners = Ownership({"constructors": source}, ttl=1, clock=clock)
    assert owners.owns(RECSYS, "a")
    clock.now = 5
    assert owners.owns(RECSYS, "a")
    assert "owner source 'constructors' failed (database is down)" in caplog.text


def test_malformed_answers_own_nothing_and_sizes_are_bounded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A group list that is a string, empty groups and non-string ids own nothing; over the bound is cut."""
    owners = Ownership(
        {"s": lambda: [("a", "recsys"), ("b", []), (3, ["recsys"]), ("c", ["recsys", 4])]},  # type: ignore[list-item]
        ttl=1,
    )
    assert owners.owned(RECSYS, ["a", "b", "c"]) == {"c"}
    monkeypatch.setattr(_owners, "MAX_OWNED_DAGS", 2)
    many = Ownership({"s": lambda: [(f"d{i}", ["recsys"]) for i in range(5)]}, ttl=1)
    assert many.owned(RECSYS, [f"d{i}" for i in range(5)]) == {"d0", "d1"}
    assert "names over 2 DAGs" in caplog.text


def test_no_source_means_no_owner() -> None:
    """``owners = none``: nothing is owned, and nothing is read."""
    owners = Ownership(installed_sources("none", "[mlwf_auth] owners"), ttl=1)
    assert owners.sources == [] and not owners.owns_any(RECSYS)


def test_an_unknown_source_name_fails_naming_the_setting() -> None:
    """A name no installed package registers is an AuthConfigError naming [mlwf_auth] owners."""
    with pytest.raises(AuthConfigError, match=r"\[mlwf_auth\] owners: no owner source 'nope'"):
        installed_sources("nope", "[mlwf_auth] owners")


def test_a_slow_source_delays_one_check_not_all() -> None:
    """While one thread re-reads a slow source, other checks answer at once from the last answer."""
    import threading

    release = threading.Event()
    entered = threading.Event()
    calls: list[int] = []

    def source() -> Iterable[tuple[str, Iterable[str]]]:
        calls.append(1)
        if len(calls) > 1:  # the second read hangs until released
            entered.set()
            release.wait(10)
        return [("a", ["recsys"])]

    clock = Clock()
    owners = Ownership({"s": source}, ttl=1, clock=clock)
    assert owners.owns(RECSYS, "a")  # the first read waits for its answer
    clock.now = 2
    reader = threading.Thread(target=owners.owns, args=(RECSYS, "a"))
    reader.start()
    assert entered.wait(5)
    assert owners.owns(RECSYS, "a")  # answered from the last answer while the read hangs
    release.set()
    reader.join(5)
    assert len(calls) == 2
