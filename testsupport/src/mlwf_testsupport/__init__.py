"""Shared test support for ML Workflows (unpublished)."""
