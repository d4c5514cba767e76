"""Operators of mlwf-operators, one module per kind (import them from their modules)."""
