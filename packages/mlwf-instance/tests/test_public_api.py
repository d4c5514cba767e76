"""The public API of mlwf_instance."""

from __future__ import annotations

import importlib

import mlwf_instance


def test_every_name_in_all_imports() -> None:
    """Every name listed in ``__all__`` is an attribute of the package."""
    module = importlib.import_module("mlwf_instance")
    missing = [name for name in mlwf_instance.__all__ if not hasattr(module, name)]
    assert missing == []


def test_version_comes_from_distribution_metadata() -> None:
    """``__version__`` is the installed distribution's version."""
    from importlib.metadata import version

    assert mlwf_instance.__version__ == version("mlwf-instance")
