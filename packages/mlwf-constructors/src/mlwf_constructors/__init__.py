"""mlwf-constructors: DAG templates with typed parameters, instantiated ad hoc and persisted.

A :class:`DagConstructor` declares :class:`Parameter` s and builds one DAG per instance; an
instance is a named set of parameter values kept in a database (:class:`InstanceStore`) and
materialized as a small generated file in the DAG folder (:func:`load_instance_dag` is what that
file calls). :class:`Constructors` creates, updates, deletes and syncs instances; the Airflow
plugin serves them over HTTP at ``/mlwf/constructors``.
"""

from importlib.metadata import PackageNotFoundError, version

from mlwf_constructors._constructor import DagConstructor, RelatedDag
from mlwf_constructors._errors import (
    ConstructorDefinitionError,
    ConstructorNotFoundError,
    ConstructorRefusedError,
    ConstructorsError,
    DagIdTakenError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    ParameterValidationError,
    StoreError,
)
from mlwf_constructors._ids import INSTANCE_ID_PATTERN, check_instance_id
from mlwf_constructors._materialize import GENERATED_DIR, load_instance_dag
from mlwf_constructors._parameters import Parameter
from mlwf_constructors._registry import (
    ENTRY_POINT_GROUP,
    RegisteredConstructor,
    configured_bundle_modules,
    discover,
    parse_bundle_modules,
)
from mlwf_constructors._service import Constructors, Settings, SyncReport
from mlwf_constructors._store import InstanceRecord, InstanceStore, as_utc

try:
    __version__ = version("mlwf-constructors")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DagConstructor",
    "RelatedDag",
    "Parameter",
    "Constructors",
    "Settings",
    "SyncReport",
    "InstanceStore",
    "InstanceRecord",
    "as_utc",
    "RegisteredConstructor",
    "discover",
    "configured_bundle_modules",
    "parse_bundle_modules",
    "load_instance_dag",
    "check_instance_id",
    "INSTANCE_ID_PATTERN",
    "ENTRY_POINT_GROUP",
    "GENERATED_DIR",
    "ConstructorsError",
    "ConstructorDefinitionError",
    "ConstructorNotFoundError",
    "ConstructorRefusedError",
    "DagIdTakenError",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InvalidInstanceIdError",
    "ParameterValidationError",
    "StoreError",
    "__version__",
]
