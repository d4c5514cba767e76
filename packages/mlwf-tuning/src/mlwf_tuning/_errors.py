"""The exceptions of mlwf-tuning: each names the tuning, experiment or setting at fault.

Every class name ends in ``Error``. The names before 0.2 (``ExperimentPruned``, ...) still
import and work, with a ``DeprecationWarning`` (module ``__getattr__``, also in the package).
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException


class TuningError(Exception):
    """Base class of every mlwf-tuning error."""


class UnknownTuningMethodError(TuningError, ValueError):
    """A spec names a search method that is neither built in nor registered as an entry point."""


class TooManyFailedExperimentsError(TuningError):
    """More experiments failed than the spec tolerates; the tuning stops."""

    def __init__(self, tuning_id: str, failed: int, tolerated: int, last_error: str | None) -> None:
        self.tuning_id = tuning_id
        self.failed = failed
        self.tolerated = tolerated
        self.last_error = last_error
        super().__init__(
            f"tuning {tuning_id!r}: {failed} experiments failed, but the spec tolerates "
            f"{tolerated} (max_failed_experiments); last error: {last_error}"
        )


class TuningSpecMismatchError(TuningError):
    """A store already holds a tuning with this id but a different spec: resuming would mix them."""


class ExperimentConflictError(TuningError):
    """A write would change the outcome of an experiment that has already finished."""


class ExperimentNotFoundError(TuningError, LookupError):
    """A store holds no such tuning or experiment (the reporter and the tuner use different stores?)."""


class ExperimentPrunedError(TuningError):
    """Raised inside an objective by ``Reporter.report`` when the early-stopping rule stops it."""


class ExperimentRunPrunedError(ExperimentPrunedError, AirflowSkipException):
    """``ExperimentPrunedError`` raised in an experiment run: Airflow skips the task instead of retrying it."""


class ForeignExperimentRunError(TuningError):
    """A run claims an experiment (``conf`` key ``mlwf_tuning``) but is not the run its tuner created."""


class TuningDefinitionError(TuningError, ValueError):
    """A tuner does not fit its constructor (unknown parameter, incompatible range, bad setting)."""


#: The names before 0.2 (not ending in ``Error``) → the classes, which are unchanged otherwise.
DEPRECATED_NAMES: dict[str, type[TuningError]] = {
    "UnknownTuningMethod": UnknownTuningMethodError,
    "TooManyFailedExperiments": TooManyFailedExperimentsError,
    "TuningSpecMismatch": TuningSpecMismatchError,
    "ExperimentConflict": ExperimentConflictError,
    "ExperimentNotFound": ExperimentNotFoundError,
    "ExperimentPruned": ExperimentPrunedError,
    "ExperimentRunPruned": ExperimentRunPrunedError,
    "ForeignExperimentRun": ForeignExperimentRunError,
}


def deprecated_name(module: str, name: str) -> type[TuningError]:
    """Return the class an old exception name stands for, warning once per call site.

    For a module's ``__getattr__``; raises ``AttributeError`` for any other name.
    """
    cls = DEPRECATED_NAMES.get(name)
    if cls is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is deprecated; use {cls.__name__} (the same class)",
        DeprecationWarning,
        stacklevel=3,
    )
    return cls


def __getattr__(name: str) -> Any:
    return deprecated_name(__name__, name)
