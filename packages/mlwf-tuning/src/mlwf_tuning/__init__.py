"""mlwf-tuning: hyperparameter tuning of any DAG constructor: grid, random and Bayesian search, recorded and reported."""

from importlib.metadata import version as _version
from typing import Any

from mlwf_tuning._constructor import TuningConstructor
from mlwf_tuning._contract import WORKFLOW_RESULT_KEY
from mlwf_tuning._errors import (
    ExperimentConflictError,
    ExperimentNotFoundError,
    ExperimentPrunedError,
    ExperimentRunPrunedError,
    ForeignExperimentRunError,
    TooManyFailedExperimentsError,
    TuningDefinitionError,
    TuningError,
    TuningSpecMismatchError,
    UnknownTuningMethodError,
    deprecated_name,
)
from mlwf_tuning._planner import plan, rebuild_study
from mlwf_tuning._pruning import report_intermediate
from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._report import REPORT_KEY, XCOM_KEY, TuningResult, notify_result
from mlwf_tuning._search import search
from mlwf_tuning._space import Categorical, FloatRange, Hyperparameter, IntRange
from mlwf_tuning._spec import (
    ENTRY_POINT_GROUP,
    HyperparameterTuningSpec,
    MedianStopping,
    SearchMethod,
    available_methods,
    register_method,
    resolve_method,
)
from mlwf_tuning._stopping import Reporter, should_stop
from mlwf_tuning._store import (
    ExperimentRun,
    ExperimentStore,
    InMemoryExperimentStore,
    IntermediateStore,
    SqlExperimentStore,
)
from mlwf_tuning._tuner import HyperparameterTuner, check_spec_fits
from mlwf_tuning._workflow import (
    TrainAndReportOperator,
    TrainEvaluateWorkflow,
    ValidateAndReportOperator,
)

__version__ = _version("mlwf-tuning")

__all__ = [
    "__version__",
    # the spec
    "HyperparameterTuningSpec",
    "Categorical",
    "IntRange",
    "FloatRange",
    "Hyperparameter",
    "MedianStopping",
    # methods
    "SearchMethod",
    "ENTRY_POINT_GROUP",
    "available_methods",
    "register_method",
    "resolve_method",
    # planning, running, recording
    "plan",
    "rebuild_study",
    "search",
    "Reporter",
    "should_stop",
    "ExperimentRecord",
    "ExperimentState",
    "ExperimentStore",
    "InMemoryExperimentStore",
    "SqlExperimentStore",
    # the tuning DAG and the experiment contract
    "HyperparameterTuner",
    "TuningConstructor",
    "check_spec_fits",
    "TrainEvaluateWorkflow",
    "ValidateAndReportOperator",
    "WORKFLOW_RESULT_KEY",
    # results and reports
    "TuningResult",
    "XCOM_KEY",
    "REPORT_KEY",
    "notify_result",
    # errors
    "TuningError",
    "UnknownTuningMethodError",
    "TooManyFailedExperimentsError",
    "TuningSpecMismatchError",
    "ExperimentConflictError",
    "ExperimentPrunedError",
    "TuningDefinitionError",
    "ExperimentRunPrunedError",
    "ExperimentNotFoundError",
    "ForeignExperimentRunError",
    # early stopping inside DAG experiments
    "report_intermediate",
    "IntermediateStore",
    "TrainAndReportOperator",
    "ExperimentRun",
]


def __getattr__(name: str) -> Any:
    # The exception names before 0.2 (ExperimentPruned, ...): the same classes, with a warning.
    return deprecated_name(__name__, name)
