"""What a model builder needs to know about the data: input shape, task and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "regression", "generation"]
ColumnKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class TableColumn:
    """One input column of a table, with what the model's preprocessing learnt of it on the train
    split: a number's mean and variance (of its present cells) and whether cells were empty there;
    a category's vocabulary, most frequent first, and how many hash buckets share the values
    outside it (an unseen value is never an error: it lands in a bucket).

    A number also has the quantiles of its train values (`bin_edges`), for a piecewise-linear
    encoding that is robust to outliers and lets a linear layer bend.

    `name` is the column's header as the user wrote it; `key` names the model input (and the
    SavedModel's signature argument) that reads it: letters, digits and underscores.
    """

    name: str
    key: str
    kind: ColumnKind
    mean: float = 0.0
    variance: float = 1.0
    missing: bool = False
    vocabulary: tuple[str, ...] = ()
    hash_buckets: int = 1
    # A number's quantiles on the train split, ascending and distinct: the edges of its bins.
    bin_edges: tuple[float, ...] = ()
    # A number the file wrote as dates: their format (strptime's), read as days since 1970-01-01.
    date_format: str | None = None

    @property
    def cardinality(self) -> int:
        """Distinct indices a category's lookup gives: its vocabulary plus the buckets outside it."""
        return len(self.vocabulary) + self.hash_buckets


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

    A table (a CSV of numbers and categories) has `columns`: one model input per column, raw
    values in, imputation, normalisation and lookups inside the model (`models.tabular`).
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
    columns: tuple[TableColumn, ...] = ()

    @classmethod
    def from_dict(cls, fields: dict) -> DataSpec:
        """A spec from its `dataclasses.asdict` form (as a prepared dataset's manifest holds it)."""
        fields = dict(fields)
        for key in ("input_shape", "input_mean", "input_variance"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        fields["columns"] = tuple(
            TableColumn(
                **{
                    **column,
                    "vocabulary": tuple(column.get("vocabulary", ())),
                    "bin_edges": tuple(column.get("bin_edges", ())),
                }
            )
            for column in fields.get("columns") or ()
        )
        return cls(**fields)

    @property
    def is_table(self) -> bool:
        """True for a table: one named input per column."""
        return bool(self.columns)

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
