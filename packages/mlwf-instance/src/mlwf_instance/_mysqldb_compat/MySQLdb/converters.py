"""The two names Airflow 3.3.2's ``configure_adapters`` touches; nothing else uses them."""

from __future__ import annotations

from typing import Any

conversions: dict[Any, Any] = {}


def DateTime2literal(value: Any, conversions: Any) -> Any:
    """Never called: the instance connects with PyMySQL."""
    raise NotImplementedError("mlwf's MySQLdb stand-in is not a database driver; use PyMySQL")
