"""pytest plugin: shared fixtures, loaded in every package's test environment."""
