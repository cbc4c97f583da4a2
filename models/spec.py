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

    Audio is `(samples,)` mono waveforms in [-1, 1] with its `sample_rate` (None for other data):
    the models put a log-mel front end (`models.audio`) in front of their layers.

    Raw-valued data (a user's CSV) carries the train split's statistics: `input_mean` and
    `input_variance` per feature (last axis) standardise the inputs inside the model, and a
    regression head maps its output back to the target's units with `target_mean` and
    `target_scale`, so a model and its SavedModel read and return raw values.
    """

    input_shape: tuple[int, ...]
    task: Task = "classification"
    num_classes: int | None = None
    num_outputs: int = 1
    input_dtype: str = "float32"
    input_mean: tuple[float, ...] | None = None
    input_variance: tuple[float, ...] | None = None
    target_mean: float = 0.0
    target_scale: float = 1.0
    sample_rate: int | None = None

    @property
    def is_image(self) -> bool:
        """True for `(height, width, channels)` inputs."""
        return len(self.input_shape) == 3

    @property
    def is_audio(self) -> bool:
        """True for waveforms `(samples,)` of a known sample rate."""
        return self.sample_rate is not None

    @property
    def output_units(self) -> int:
        """Width of the model's final layer."""
        if self.task == "classification":
            if not self.num_classes:
                raise ValueError("a classification DataSpec needs num_classes")
            return self.num_classes
        return self.num_outputs
