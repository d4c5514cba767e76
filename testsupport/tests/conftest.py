"""pytester runs small test files against the mlwf_testsupport plugin."""

pytest_plugins = ["pytester"]
