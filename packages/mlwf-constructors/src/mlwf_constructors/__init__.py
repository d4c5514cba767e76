"""mlwf-constructors: Parameterized DAG constructors: DAG templates with typed parameters whose instances are created ad hoc, persisted and re-created after a restart"""

from importlib.metadata import version as _version

__version__ = _version("mlwf-constructors")

__all__ = ["__version__"]
