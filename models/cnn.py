"""Convolutional network: Conv2D blocks on images, Conv1D blocks on sequences, a dense head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import keras

from models.heads import BATCH_NORM_MOMENTUM, normalized_inputs, output_head
from models.spec import DataSpec


def build_cnn(
    spec: DataSpec,
    filters: Sequence[int] = (32, 64),
    kernel_size: int | Sequence[int] = 3,
    padding: Literal["same", "valid"] = "same",
    activation: str = "relu",
    pooling: Literal["max", "average", "none"] = "max",
    batch_norm: bool = False,
    dropout: float = 0.0,
    global_pooling: Literal["average", "max", "flatten"] = "flatten",
    dense_units: Sequence[int] = (128,),
) -> keras.Model:
    """Conv blocks (conv, optional batch norm, activation, pooling) then a dense head.

    Rank-3 inputs `(height, width, channels)` use Conv2D; rank-1 `(steps,)` and rank-2
    `(steps, features)` inputs use Conv1D. `kernel_size` is one size for all blocks or one per
    block. Pooling halves the resolution after each block while it stays above 1.
    """
    kernel_sizes = _per_block(kernel_size, len(filters), "kernel_size")
    inputs = keras.Input(shape=spec.input_shape, name="inputs")
    x = normalized_inputs(inputs, spec)
    if len(spec.input_shape) == 1:
        x = keras.layers.Reshape((spec.input_shape[0], 1), name="as_sequence")(x)
    two_dimensional = len(spec.input_shape) == 3
    conv = keras.layers.Conv2D if two_dimensional else keras.layers.Conv1D
    pools = {
        "max": keras.layers.MaxPooling2D if two_dimensional else keras.layers.MaxPooling1D,
        "average": keras.layers.AveragePooling2D if two_dimensional else keras.layers.AveragePooling1D,
    }
    for index, (width, size) in enumerate(zip(filters, kernel_sizes, strict=True)):
        x = conv(width, size, padding=padding, use_bias=not batch_norm, name=f"conv_{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"batch_norm_{index}")(x)
        x = keras.layers.Activation(activation, name=f"{activation}_{index}")(x)
        if pooling != "none" and min(x.shape[1:-1]) >= 2:
            x = pools[pooling](2, name=f"pool_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    if global_pooling == "average":
        pool = keras.layers.GlobalAveragePooling2D if two_dimensional else keras.layers.GlobalAveragePooling1D
        x = pool(name="global_pool")(x)
    elif global_pooling == "max":
        pool = keras.layers.GlobalMaxPooling2D if two_dimensional else keras.layers.GlobalMaxPooling1D
        x = pool(name="global_pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    for index, width in enumerate(dense_units):
        x = keras.layers.Dense(width, activation=activation, name=f"dense_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dense_dropout_{index}")(x)
    outputs = output_head(x, spec)
    return keras.Model(inputs, outputs, name="cnn")


def _per_block(value: int | Sequence[int], blocks: int, field: str) -> list[int]:
    """One value per block from a scalar or a list of the right length."""
    if isinstance(value, int):
        return [value] * blocks
    values = list(value)
    if len(values) != blocks:
        raise ValueError(f"{field} has {len(values)} values for {blocks} blocks; give one or {blocks}")
    return values
