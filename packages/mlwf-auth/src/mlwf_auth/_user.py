"""The user of the mlwf auth manager: a name and the groups it had when its token was made."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

#: Groups carried in a token at most (a bound on the JWT's size; the directory caps them too).
MAX_TOKEN_GROUPS = 1000


class MlwfUser(BaseUser):
    """A user by name with its LDAP groups (as of its token; refreshed from LDAP on use)."""

    def __init__(self, name: str, groups: Iterable[str]) -> None:
        """Make the user ``name`` in ``groups``."""
        self.name = name
        self.groups = frozenset(groups)

    def get_id(self) -> str:
        """Return the user name (the JWT's ``sub``)."""
        return self.name

    def get_name(self) -> str:
        """Return the user name."""
        return self.name

    def serialize(self) -> dict[str, Any]:
        """Return the JWT claims of this user."""
        return {"sub": self.name, "groups": sorted(self.groups)[:MAX_TOKEN_GROUPS]}

    @classmethod
    def deserialize(cls, claims: dict[str, Any]) -> MlwfUser:
        """Return the user of validated JWT ``claims``; raise ValueError when they are not ours."""
        name = claims.get("sub")
        groups = claims.get("groups", [])
        if not isinstance(name, str) or not name:
            raise ValueError("the token has no user name")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError("the token's groups are not a list of names")
        return cls(name, groups)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MlwfUser) and (self.name, self.groups) == (
            other.name,
            other.groups,
        )

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"MlwfUser({self.name!r}, groups={sorted(self.groups)!r})"
