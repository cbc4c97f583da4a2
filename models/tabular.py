"""Tables: raw column values in, one feature vector out, with the preprocessing inside the model.

Each column is a named input (`DataSpec.columns`): a number (NaN where empty) is imputed with the
train split's mean, standardised and compressed far from the mean (asinh), encoded piecewise-linearly
in bins at the train split's quantiles, and joined by a missing indicator when the train split had
empty cells in it; a category (a string, "" where empty) is looked up in its vocabulary, a value outside
it hashed into the out-of-vocabulary buckets (never an error), then one-hot encoded when it has few
values and embedded otherwise. So a model, its logged copy and its SavedModel take raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from models.spec import DataSpec, TableColumn

# Categories with at most this many indices (vocabulary and buckets) are one-hot encoded; more get
# an embedding of `embedding_size` dimensions.
ONE_HOT_MAX = 16
MAX_EMBEDDING_SIZE = 32


def table_inputs(spec: DataSpec) -> dict[str, keras.KerasTensor]:
    """One scalar input per column, named by its key: float32 numbers, string categories."""
    return {
        column.key: keras.Input(
            shape=(), dtype="float32" if column.kind == "numeric" else "string", name=column.key
        )
        for column in spec.columns
    }


@dataclass(frozen=True)
class EncodedTable:
    """A table's columns encoded: `features` for the dense stacks; `linear` (the numbers' standardised
    values and missing indicators, the few-valued categories' one-hot codes) and `indices` (the
    many-valued categories' vocabulary indices) for a linear model of the same columns."""

    features: keras.KerasTensor
    linear: keras.KerasTensor | None
    indices: tuple[tuple[TableColumn, keras.KerasTensor], ...]


def encoded_table(inputs: dict[str, keras.KerasTensor], spec: DataSpec) -> EncodedTable:
    """The columns as one vector: the numbers standardised (asinh-compressed), in their bins and
    with missing indicators, then each category's one-hot code or embedding."""
    numeric = [column for column in spec.columns if column.kind == "numeric"]
    parts, linear = [], []
    if numeric:
        numbers = keras.ops.stack([inputs[column.key] for column in numeric], axis=-1)
        empty = keras.ops.isnan(numbers)
        means = keras.ops.convert_to_tensor([column.mean for column in numeric], dtype="float32")
        imputed = keras.ops.where(empty, means, numbers)
        standardised = keras.layers.Normalization(
            mean=[column.mean for column in numeric],
            variance=[column.variance for column in numeric],
            name="numeric_normalization",
        )(imputed)
        # asinh: the identity near the mean, logarithmic far from it, so that an outlier (a house
        # ten deviations larger than most) does not swing a linear layer's output.
        compressed = keras.ops.arcsinh(standardised)
        parts.append(compressed)
        linear.append(compressed)
        binned = _piecewise_linear(imputed, numeric)
        if binned is not None:
            parts.append(binned)
        flagged = [index for index, column in enumerate(numeric) if column.missing]
        if flagged:
            flags = keras.ops.cast(keras.ops.take(empty, flagged, axis=1), "float32")
            parts.append(flags)
            linear.append(flags)
    indices = []
    for column in spec.columns:
        if column.kind != "categorical":
            continue
        looked_up = _looked_up_category(inputs[column.key], column)
        if column.cardinality <= ONE_HOT_MAX:
            parts.append(looked_up)
            linear.append(looked_up)
        else:
            parts.append(
                keras.layers.Embedding(
                    column.cardinality, embedding_size(column.cardinality), name=f"embedding_{column.key}"
                )(looked_up)
            )
            indices.append((column, looked_up))
    return EncodedTable(_joined(parts, "table_features"), _joined(linear, "linear_features"), tuple(indices))


def _joined(parts: list[keras.KerasTensor], name: str) -> keras.KerasTensor | None:
    if len(parts) <= 1:
        return parts[0] if parts else None
    return keras.layers.Concatenate(name=name)(parts)


def _piecewise_linear(numbers: keras.KerasTensor, columns: list[TableColumn]) -> keras.KerasTensor | None:
    """Each number's position in each of its bins (0 below, 1 above, linear within): the
    piecewise-linear encoding of Gorishniy et al. (2022), bins at the train split's quantiles."""
    index, left, width = [], [], []
    for position, column in enumerate(columns):
        edges = column.bin_edges
        for low, high in zip(edges[:-1], edges[1:], strict=True):
            index.append(position)
            left.append(low)
            width.append(high - low)
    if not index:
        return None
    chosen = keras.ops.take(numbers, index, axis=1)
    left = keras.ops.convert_to_tensor(left, dtype="float32")
    width = keras.ops.convert_to_tensor(width, dtype="float32")
    return keras.ops.clip((chosen - left) / width, 0.0, 1.0)


def _looked_up_category(values: keras.KerasTensor, column: TableColumn) -> keras.KerasTensor:
    """A category's one-hot code when it has few values, its vocabulary index otherwise."""
    return keras.layers.StringLookup(
        vocabulary=list(column.vocabulary),
        num_oov_indices=column.hash_buckets,
        output_mode="one_hot" if column.cardinality <= ONE_HOT_MAX else "int",
        name=f"lookup_{column.key}",
    )(values)


def embedding_size(cardinality: int) -> int:
    """Dimensions of a category's embedding: grows with its values as 1.6 n^0.56 (fast.ai's rule
    of thumb for tabular embeddings), at most MAX_EMBEDDING_SIZE."""
    return max(2, min(MAX_EMBEDDING_SIZE, round(1.6 * cardinality**0.56)))
