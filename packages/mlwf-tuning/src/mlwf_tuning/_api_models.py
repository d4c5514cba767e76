"""Response models of the tuning HTTP API (its typed OpenAPI, read by mlwf-ui's tuning pages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ErrorResponse",
    "ExperimentOut",
    "HyperparameterOut",
    "TuningDetail",
    "TuningList",
    "TuningSummary",
]


class ErrorResponse(BaseModel):
    """An error: what is wrong."""

    detail: str


class HyperparameterOut(BaseModel):
    """One hyperparameter of the search space, as the spec declares it."""

    name: str
    kind: str = Field(description="float, int or categorical")
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None


class TuningSummary(BaseModel):
    """A tuning: one run of a tuning DAG, with how far it got."""

    tuning_id: str = Field(description="`<dag id>/<run id>` (cut and hashed when longer than 250)")
    dag_id: str
    run_id: str | None = Field(description="The tuning DAG run; None when the id had to be cut")
    created: datetime
    metric: str
    direction: str = Field(description="minimize or maximize")
    method: str
    n_experiments: int | None = Field(description="The spec's budget (None: the grid's size)")
    states: dict[str, int] = Field(description="How many experiments are in each state")
    best_index: int | None = None
    best_value: float | None = None
    run_state: str | None = Field(
        default=None, description="The tuning DAG run's state; None: Airflow no longer has the run"
    )
    problem: str | None = Field(
        default=None, description="What of the stored tuning could not be read (the rest is shown)"
    )


class TuningList(BaseModel):
    """A page of the tunings the user may read, newest first."""

    tunings: list[TuningSummary]
    total_entries: int = Field(description="Tunings the user may read (all pages)")


class ExperimentOut(BaseModel):
    """One experiment of a tuning."""

    index: int
    params: dict[str, Any]
    state: str = Field(description="planned, running, succeeded, failed or pruned")
    metrics: dict[str, float | None] = Field(
        description="The experiment's metrics (a value that is not finite, such as NaN, is null)"
    )
    intermediate: list[tuple[int, float]] = Field(
        description="(step, value) of the optimized metric reported while running, by step"
    )
    started: datetime | None = None
    finished: datetime | None = None
    duration_s: float | None = None
    error: str | None = None


class TuningDetail(TuningSummary):
    """A tuning with its search space and every experiment, by index."""

    hyperparameters: list[HyperparameterOut]
    experiments: list[ExperimentOut]
