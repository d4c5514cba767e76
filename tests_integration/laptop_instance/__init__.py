"""Integration test modules that share one laptop instance (see ``conftest.py`` here)."""
