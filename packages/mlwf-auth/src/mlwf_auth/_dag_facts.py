"""A DAG's tags and bundle from Airflow's metadata database, cached for a few seconds.

Rules match DAGs by id, tag or bundle, but Airflow asks about a DAG by id only. One query
answers for any number of DAGs (``dag`` joined with ``dag_tag``); answers are kept
``ttl`` seconds, so a tag added to a DAG counts within that time. A DAG the database does not
know has no tags and no bundle: only id rules match it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import cachetools

from mlwf_auth._rules import DagFacts

#: DAG ids per query (an IN list of this many binds stays far below every database's limit).
CHUNK = 500


def query_dag_facts(dag_ids: list[str]) -> dict[str, DagFacts]:
    """Return the facts of ``dag_ids`` known to Airflow's database (one query per CHUNK ids)."""
    from airflow.models.dag import DagModel, DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import select

    bundles: dict[str, str | None] = {}
    tags: dict[str, set[str]] = {}
    with create_session() as session:
        for start in range(0, len(dag_ids), CHUNK):
            chunk = dag_ids[start : start + CHUNK]
            rows = session.execute(
                select(DagModel.dag_id, DagModel.bundle_name, DagTag.name)
                .outerjoin(DagTag, DagTag.dag_id == DagModel.dag_id)
                .where(DagModel.dag_id.in_(chunk))
            )
            for dag_id, bundle, tag in rows:
                bundles[dag_id] = bundle
                if tag is not None:
                    tags.setdefault(dag_id, set()).add(tag)
    return {
        dag_id: DagFacts(dag_id, frozenset(tags.get(dag_id, ())), bundle)
        for dag_id, bundle in bundles.items()
    }


class DagFactsCache:
    """Facts of DAGs by id, from ``query`` (default: Airflow's database), cached ``ttl`` seconds."""

    def __init__(
        self,
        ttl: float,
        *,
        query: Callable[[list[str]], dict[str, DagFacts]] = query_dag_facts,
        maxsize: int = 100_000,
    ) -> None:
        """Cache up to ``maxsize`` DAGs' facts for ``ttl`` seconds each."""
        self._query = query
        self._cache: cachetools.TTLCache[str, DagFacts] = cachetools.TTLCache(maxsize, ttl)
        self._lock = threading.Lock()

    def get_many(self, dag_ids: Iterable[str]) -> list[DagFacts]:
        """Return the facts of each of ``dag_ids`` (one query for those not cached)."""
        wanted = list(dict.fromkeys(dag_ids))
        with self._lock:
            found = {d: f for d in wanted if (f := self._cache.get(d)) is not None}
        missing = [d for d in wanted if d not in found]
        if missing:
            fresh = self._query(missing)
            with self._lock:
                for dag_id in missing:
                    facts = fresh.get(dag_id, DagFacts(dag_id))
                    self._cache[dag_id] = facts
                    found[dag_id] = facts
        return [found[d] for d in wanted]

    def get(self, dag_id: str) -> DagFacts:
        """Return the facts of ``dag_id``."""
        return self.get_many([dag_id])[0]
