"""Owned DAGs: groups that may do everything on DAGs they created (constructor instances).

Rules in the policy file are written by the platform team; DAGs that users create at run time
(an mlwf-constructors instance and the DAGs its file defines) belong to the creator's groups.
Packages that create DAGs say who owns which through the ``mlwf_auth.owners`` entry point
group: a callable with no arguments returning ``(dag_id, groups)`` pairs. mlwf-auth imports none
of them by name; mlwf-constructors registers one that reads its instance store.

The answer is kept ``ttl`` seconds: an instance's owners can act on it within that time of its
creation (its creator at once: creating needs ``edit`` on the DAG id from the rules). A source that fails keeps its last answer (logged) and is asked
again after the TTL; nothing here raises into a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points

from mlwf_auth._errors import AuthConfigError

log = logging.getLogger(__name__)

#: The entry point group of owner sources.
ENTRY_POINT_GROUP = "mlwf_auth.owners"
#: A source: ``(dag_id, owner groups)`` for every DAG it knows an owner of.
OwnerSource = Callable[[], Iterable[tuple[str, Iterable[str]]]]
#: DAGs kept at most (a bound on memory; more are dropped, logged).
MAX_OWNED_DAGS = 200_000


def installed_sources(wanted: str, setting: str) -> dict[str, OwnerSource]:
    """Load the sources named in ``wanted`` (``all``, ``none`` or comma-separated entry point names).

    Raises AuthConfigError naming ``setting`` for an unknown name or a source that fails to import.
    """
    wanted = wanted.strip() or "all"
    available = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if wanted == "none":
        return {}
    names = (
        sorted(available)
        if wanted == "all"
        else [n.strip() for n in wanted.split(",") if n.strip()]
    )
    sources: dict[str, OwnerSource] = {}
    for name in names:
        if name not in available:
            raise AuthConfigError(
                setting,
                f"no owner source {name!r} is installed (installed: "
                f"{', '.join(sorted(available)) or 'none'})",
            )
        try:
            loaded = available[name].load()
        except Exception as err:
            raise AuthConfigError(
                setting, f"owner source {name!r} ({available[name].value}) failed to load: {err}"
            ) from None
        if not callable(loaded):
            raise AuthConfigError(setting, f"owner source {name!r} is not callable")
        sources[name] = loaded
    return sources


class Ownership:
    """The owners of DAGs, from ``sources``, re-read at most every ``ttl`` seconds."""

    def __init__(
        self,
        sources: Mapping[str, OwnerSource],
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Ask ``sources`` (name → callable) for owners, keeping each answer ``ttl`` seconds."""
        self._sources = dict(sources)
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._owners: dict[str, dict[str, frozenset[str]]] = {name: {} for name in sources}
        #: (DAG id → owner groups, every owning group): replaced whole, read without the lock.
        self._answer: tuple[dict[str, frozenset[str]], frozenset[str]] = ({}, frozenset())
        self._next_read = float("-inf")
        #: Whether the sources were read once (before that, a check waits for the answer).
        self._read_once = False

    @property
    def sources(self) -> list[str]:
        """The names of the sources asked."""
        return sorted(self._sources)

    def _current(self) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
        """The owners now; one thread re-reads the sources when stale, the others go on with
        the previous answer (a slow store delays one request, not all). The first read waits."""
        if not self._sources:
            return self._answer
        if self._clock() >= self._next_read:
            first = not self._read_once
            if self._lock.acquire(blocking=first):
                try:
                    if self._clock() >= self._next_read:
                        self._read()
                finally:
                    self._lock.release()
        return self._answer

    def _read(self) -> None:
        for name, source in self._sources.items():
            try:
                owners: dict[str, frozenset[str]] = {}
                for dag_id, groups in source():
                    if len(owners) >= MAX_OWNED_DAGS:
                        log.warning(
                            "mlwf-auth: owner source %r names over %d DAGs; the rest are ignored",
                            name,
                            MAX_OWNED_DAGS,
                        )
                        break
                    if isinstance(dag_id, str) and not isinstance(groups, str):
                        names = frozenset(g for g in groups if isinstance(g, str) and g)
                        if names:
                            owners[dag_id] = owners.get(dag_id, frozenset()) | names
                self._owners[name] = owners
            except Exception as err:  # a database hiccup must not fail requests
                log.warning(
                    "mlwf-auth: owner source %r failed (%s); keeping its last answer", name, err
                )
        merged: dict[str, frozenset[str]] = {}
        for owners in self._owners.values():
            for dag_id, groups in owners.items():
                merged[dag_id] = merged.get(dag_id, frozenset()) | groups
        owning = frozenset().union(*merged.values()) if merged else frozenset()
        self._answer = (merged, owning)  # one assignment: readers see the old or the new whole
        self._next_read = self._clock() + self._ttl
        self._read_once = True

    def owns(self, groups: frozenset[str], dag_id: str) -> bool:
        """Return whether one of ``groups`` owns ``dag_id``."""
        merged, _ = self._current()
        owners = merged.get(dag_id)
        return owners is not None and not owners.isdisjoint(groups)

    def owned(self, groups: frozenset[str], dag_ids: Iterable[str]) -> set[str]:
        """Return the ids of ``dag_ids`` that one of ``groups`` owns (one pass)."""
        merged, owning = self._current()
        if owning.isdisjoint(groups):
            return set()
        return {
            d
            for d in dag_ids
            if (owners := merged.get(d)) is not None and not owners.isdisjoint(groups)
        }

    def owns_any(self, groups: frozenset[str]) -> bool:
        """Return whether one of ``groups`` owns some DAG."""
        _, owning = self._current()
        return not owning.isdisjoint(groups)
