"""Who owns which DAG: the ``mlwf_auth.owners`` entry point, read by mlwf-auth's auth manager.

An instance created through the API records its creator's groups (when the auth manager's users
have groups, as mlwf-auth's do). mlwf-auth gives those groups every action on the instance's DAG
and on every DAG its file defines. This module only reads the store; it imports nothing of
mlwf-auth, and nothing calls it when mlwf-auth is not the auth manager.
"""

from __future__ import annotations


def owned_dags() -> list[tuple[str, tuple[str, ...]]]:
    """Return ``(dag_id, owner groups)`` for every DAG an instance with owners defines."""
    from mlwf_constructors._plugin import service

    return service().store.owned_dags()
