"""The auth manager of the API tests: SimpleAuthManager with per-DAG refusals for non-admins.

``other_*`` DAGs: nothing at all. ``dagonly_*`` DAGs: the DAG may be read, its runs may not.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class TeamAuthManager(SimpleAuthManager):
    """SimpleAuthManager that hides ``other_*`` DAGs and the runs of ``dagonly_*`` DAGs from non-admins."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        """Refuse non-admins as the module says; else SimpleAuthManager's answer."""
        dag_id = (details.id if details else None) or ""
        if not self._is_admin(user) and (
            dag_id.startswith("other_")
            or (dag_id.startswith("dagonly_") and access_entity is not None)
        ):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
