"""The `tune` section: the search space of an Optuna study and how it searches."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from pipelines.config.base import PositiveInt, StrictModel

# Keys of a search range, as opposed to the sections of a nested `tune.space` mapping.
_RANGE_KEYS = frozenset({"low", "high", "log", "step", "choices"})
# What a trial may not change: where its runs go, and the search itself.
_UNSEARCHABLE = ("name", "description", "tracking", "tune", "export")


class SearchRange(StrictModel):
    """The values one config key takes in a search: `low`..`high` (integers when both are, on a
    grid of `step` when given, log-uniform with `log`), or one of `choices`."""

    low: int | float | None = Field(None, description="Smallest value (with high).")
    high: int | float | None = Field(None, description="Largest value (with low).")
    log: bool = Field(False, description="Draw uniformly in log space; needs low > 0.")
    step: Annotated[int | float, Field(gt=0)] | None = Field(
        None, description="Draw only low, low + step, ...; integers step by 1 when not given."
    )
    choices: Annotated[list[Any], Field(min_length=1)] | None = Field(
        None, description="The values to choose from, instead of low and high."
    )

    @model_validator(mode="after")
    def _one_form(self) -> SearchRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("give either choices or low/high (with log or step), not both")
            texts = [json.dumps(choice, sort_keys=True) for choice in self.choices]
            if len(set(texts)) < len(texts):
                raise ValueError(f"choices {self.choices} repeat a value; give each value once")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs low and high, or choices")
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}; allowed: low <= high")
        if self.log and self.low <= 0:
            raise ValueError(f"log needs low > 0, not {self.low}")
        if self.log and self.step is not None and not (self.integer and self.step == 1):
            raise ValueError("log and step do not combine (except step 1 for integers); drop one")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # `{low: 1.0e-4, high: 1.0e-1, log: true}` in a resolved config, not five keys with nulls.
        return {
            key: value for key, value in handler(self).items() if value is not None and value is not False
        }

    @property
    def integer(self) -> bool:
        """Whether the range holds integers: low, high (and step) written as integers."""
        return all(isinstance(value, int) for value in (self.low, self.high, self.step or 1))

    def grid(self) -> list[Any] | None:
        """Every value of the range for a grid search; None when a float range has no step."""
        if self.choices is not None:
            return list(self.choices)
        if not self.integer and self.step is None:
            return None
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + index * step for index in range(count)]
        return values if self.integer else [round(value, 12) for value in values]

    def bounds(self) -> list[Any]:
        """The values that every trial's draw lies between (or all choices): checked up front."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


class TuneConfig(StrictModel):
    """How `deeparch tune` searches: the space, the metric, the budget, the sampler and pruner."""

    space: dict[str, SearchRange] = Field(
        {}, description="Dotted config key -> {low, high[, log][, step]} or {choices: [...]}."
    )
    metric: str | None = Field(
        None,
        description="Epoch-end metric a trial reports and is judged by; None: val_accuracy for "
        "classification, else val_loss. Higher is better unless its name says loss, mse, mae or error.",
    )
    trials: PositiveInt = Field(20, description="Trials of the study in total, over all its workers.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Optuna sampler.")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Optuna pruner that stops unpromising trials at an epoch end."
    )
    startup_trials: Annotated[int, Field(ge=0)] = Field(
        5, description="Trials drawn at random before TPE models the space and before median pruning."
    )
    warmup_epochs: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="Epochs every trial trains before the median pruner may stop it; None: three "
        "quarters of the trial's epochs (of the most when train.epochs is searched).",
    )
    seed: int | None = Field(
        None,
        description="Sampler seed; None draws a fresh one per worker (workers with one seed draw alike).",
    )
    heartbeat_seconds: PositiveInt = Field(
        10,
        description="How often a worker marks its trial alive; a trial silent for twice this long is "
        "failed and run again.",
    )

    @field_validator("space", mode="before")
    @classmethod
    def _dotted_keys(cls, space: Any) -> Any:
        # `tune.space.train.learning_rate={...}` on the command line nests what a file writes as
        # `train.learning_rate: {...}`; both mean the same key, and a null value drops it.
        if not isinstance(space, dict):
            return space
        flat: dict[str, Any] = {}

        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                dotted = f"{prefix}{key}"
                if isinstance(value, dict) and value and not set(value) & _RANGE_KEYS:
                    walk(value, f"{dotted}.")
                elif value is None:
                    flat.pop(dotted, None)  # overrides come after the file's keys
                else:
                    flat[dotted] = value

        walk(space, "")
        return flat

    @field_validator("space")
    @classmethod
    def _searchable_keys(cls, space: dict[str, SearchRange]) -> dict[str, SearchRange]:
        for key in space:
            if key.split(".")[0] in _UNSEARCHABLE:
                raise ValueError(
                    f"key {key!r} cannot be searched; allowed: keys of seed, data, model, train, evaluate"
                )
        return space
