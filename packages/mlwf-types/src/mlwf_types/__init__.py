"""mlwf-types: type-check Apache Airflow DAGs (operator arguments and XCom edges) before they run.

Declare an operator's types with :func:`typed`; TaskFlow functions are typed by their annotations.
:func:`check_dag` reports every mismatch of a DAG at once; the ``airflow.policy`` entry point
refuses such DAGs in Airflow, and run-time guards fail a task with :class:`XComTypeError`
before a wrong value is pushed.
"""

from importlib.metadata import PackageNotFoundError, version

from mlwf_types._checker import TypeIssue, check_dag
from mlwf_types._config import Mode, current_mode
from mlwf_types._declarations import TypeDeclaration, declaration_of
from mlwf_types._errors import (
    InvalidModeError,
    MlwfTypesError,
    TypeDeclarationError,
    XComTypeError,
)
from mlwf_types._hints import find_mismatch, is_compatible, type_repr
from mlwf_types._typed import typed

try:
    __version__ = version("mlwf-types")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "typed",
    "check_dag",
    "TypeIssue",
    "TypeDeclaration",
    "declaration_of",
    "is_compatible",
    "find_mismatch",
    "type_repr",
    "current_mode",
    "Mode",
    "MlwfTypesError",
    "TypeDeclarationError",
    "XComTypeError",
    "InvalidModeError",
    "__version__",
]
