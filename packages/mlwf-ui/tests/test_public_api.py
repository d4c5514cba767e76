"""Every public name of mlwf_ui imports."""

from __future__ import annotations

import mlwf_ui


def test_every_name_in_all_imports() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    assert [n for n in mlwf_ui.__all__ if not hasattr(mlwf_ui, n)] == []
