"""An auth manager for the API tests: SimpleAuthManager (roles, teams) that also guards ``prod_*`` DAGs.

Users other than admins may see a ``prod_*`` DAG (GET without an entity) but do nothing else to
it: not change, create or delete it, not trigger its runs, not read its XComs.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class RestrictedAuthManager(SimpleAuthManager):
    """SimpleAuthManager that refuses non-admins everything but a plain read on ``prod_*`` DAGs."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        """Refuse non-admins on ``prod_*`` DAG ids unless it is a plain GET; else SimpleAuthManager's answer."""
        dag_id = details.id if details else None
        if (
            dag_id
            and dag_id.startswith("prod_")
            and not self._is_admin(user)
            and (method != "GET" or access_entity is not None)
        ):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
