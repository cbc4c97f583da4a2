"""What a model builder needs to know about the data: input shape, task and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "regression", "generation"]


@dataclass(frozen=True)
class DataSpec:
    """Shape and task of a dataset, as seen by a model builder (no batch dimension).

    `input_shape` is `(height, width, channels)` for images, `(steps, features)` or `(steps,)`
    for sequences and `(features,)` for flat vectors. `num_classes` is set for classification
    (and for class-conditional generation); `num_outputs` is the width of a regression target.
    """

    input_shape: tuple[int, ...]
    task: Task = "classification"
    num_classes: int | None = None
    num_outputs: int = 1
    input_dtype: str = "float32"

    @property
    def is_image(self) -> bool:
        """True for `(height, width, channels)` inputs."""
        return len(self.input_shape) == 3

    @property
    def output_units(self) -> int:
        """Width of the model's final layer."""
        if self.task == "classification":
            if not self.num_classes:
                raise ValueError("a classification DataSpec needs num_classes")
            return self.num_classes
        return self.num_outputs
