"""What every section of the configuration shares: the user-input error, the strict base model and
common field types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

ACTIVATIONS = Literal["relu", "gelu", "elu", "selu", "swish", "tanh", "sigmoid"]
PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class ConfigError(ValueError):
    """Invalid user input in an experiment file or override: one sentence per problem."""


class StrictModel(BaseModel):
    """Rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
