"""The hyperparameter space: categorical choices, integer ranges and float ranges."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

if (
    TYPE_CHECKING
):  # optuna is imported when planning only: DAG files that declare tunings parse fast
    from optuna.distributions import BaseDistribution

#: A categorical choice: what Optuna can store and what survives a JSON round trip.
Choice: TypeAlias = bool | int | float | str | None


class Categorical(BaseModel):
    """One of a fixed list of choices, e.g. ``Categorical(choices=["gini", "entropy"])``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["categorical"] = "categorical"
    choices: tuple[Choice, ...]

    def __init__(self, choices: Any = None, /, **data: Any) -> None:
        if choices is not None:
            data["choices"] = choices
        super().__init__(**data)

    @model_validator(mode="after")
    def _check(self) -> Categorical:
        if not self.choices:
            raise ValueError("Categorical needs at least one choice; got an empty list")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"Categorical choices must be distinct; got {list(self.choices)}")
        return self

    def distribution(self) -> BaseDistribution:
        """Return the Optuna distribution of this hyperparameter."""
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)

    def grid_size(self, name: str) -> int:
        """Return how many values a grid search tries (without listing them)."""
        return len(self.choices)

    def grid_values(self, name: str) -> list[Any]:
        """Return every value a grid search tries."""
        return list(self.choices)


def _check_bounds(kind: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{kind} bounds must be finite; got low={low}, high={high}")
    if low >= high:
        raise ValueError(f"{kind} needs low < high; got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"{kind} with log=True needs low > 0; got low={low}")


class IntRange(BaseModel):
    """An integer in ``[low, high]`` (both included), optionally on a log scale or with a step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = 1

    def __init__(self, low: Any = None, high: Any = None, /, **data: Any) -> None:
        if low is not None:
            data["low"] = low
        if high is not None:
            data["high"] = high
        super().__init__(**data)

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        _check_bounds("IntRange", self.low, self.high, self.log)
        if self.step < 1:
            raise ValueError(f"IntRange step must be >= 1; got step={self.step}")
        if self.log and self.step != 1:
            raise ValueError(
                f"IntRange cannot combine log=True with step={self.step} (Optuna forbids it)"
            )
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"IntRange high - low must be a multiple of step; got low={self.low}, "
                f"high={self.high}, step={self.step}"
            )
        return self

    def distribution(self) -> BaseDistribution:
        """Return the Optuna distribution of this hyperparameter."""
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def grid_size(self, name: str) -> int:
        """Return how many values a grid search tries, by arithmetic (``IntRange(0, 10**10)`` is 10**10 + 1)."""
        return (self.high - self.low) // self.step + 1

    def grid_values(self, name: str) -> list[Any]:
        """Return every value a grid search tries (call ``grid_size`` first: this lists them all)."""
        return list(range(self.low, self.high + 1, self.step))


class FloatRange(BaseModel):
    """A float in ``[low, high]``, optionally on a log scale; a ``step`` makes it discrete (and griddable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __init__(self, low: Any = None, high: Any = None, /, **data: Any) -> None:
        if low is not None:
            data["low"] = low
        if high is not None:
            data["high"] = high
        super().__init__(**data)

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        _check_bounds("FloatRange", self.low, self.high, self.log)
        if self.step is not None:
            if not self.step > 0:
                raise ValueError(f"FloatRange step must be > 0; got step={self.step}")
            if self.log:
                raise ValueError(
                    f"FloatRange cannot combine log=True with step={self.step} (Optuna forbids it)"
                )
            n = (self.high - self.low) / self.step
            if not math.isfinite(n):  # a subnormal step: round() would raise OverflowError
                raise ValueError(
                    f"FloatRange step={self.step} is too small for {self.low}..{self.high}"
                )
            if abs(n - round(n)) > 1e-8:
                raise ValueError(
                    f"FloatRange high - low must be a multiple of step; got low={self.low}, "
                    f"high={self.high}, step={self.step}"
                )
        return self

    def distribution(self) -> BaseDistribution:
        """Return the Optuna distribution of this hyperparameter."""
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def grid_size(self, name: str) -> int:
        """Return how many values a grid search tries, by arithmetic (only for ranges with a step)."""
        if self.step is None:
            raise ValueError(
                f"hyperparameter {name!r}: a grid search needs every FloatRange to have a step; "
                f"{self.low}..{self.high} is continuous"
            )
        return round((self.high - self.low) / self.step) + 1

    def grid_values(self, name: str) -> list[Any]:
        """Return every value a grid search tries (call ``grid_size`` first: this lists them all)."""
        n = self.grid_size(name) - 1
        assert self.step is not None  # grid_size raised otherwise
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]


#: Any hyperparameter; the ``kind`` field tells them apart in JSON.
Hyperparameter: TypeAlias = Annotated[
    Categorical | IntRange | FloatRange, Field(discriminator="kind")
]
