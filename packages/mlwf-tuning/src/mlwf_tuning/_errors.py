"""The exceptions of mlwf-tuning: each names the tuning, experiment or setting at fault."""

from __future__ import annotations


class TuningError(Exception):
    """Base class of every mlwf-tuning error."""


class UnknownTuningMethod(TuningError, ValueError):
    """A spec names a search method that is neither built in nor registered as an entry point."""


class TooManyFailedExperiments(TuningError):
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


class TuningSpecMismatch(TuningError):
    """A store already holds a tuning with this id but a different spec: resuming would mix them."""


class ExperimentConflict(TuningError):
    """A write would change the outcome of an experiment that has already finished."""


class ExperimentPruned(TuningError):
    """Raised inside an objective by ``Reporter.report`` when the early-stopping rule stops it."""
