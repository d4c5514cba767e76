"""Every public name of mlwf_stats_bridge imports."""

from __future__ import annotations

import mlwf_stats_bridge


def test_every_name_in_all_imports() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    assert [n for n in mlwf_stats_bridge.__all__ if not hasattr(mlwf_stats_bridge, n)] == []
