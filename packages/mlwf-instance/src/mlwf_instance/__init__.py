"""ML Workflows instances."""
