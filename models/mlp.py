"""Multilayer perceptron: a stack of dense layers a = σ(W a_prev + b) on flattened input, or on
the encoded columns of a table (`models.tabular`)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from models.heads import BATCH_NORM_MOMENTUM, normalized_inputs, output_head
from models.spec import DataSpec
from models.tabular import encoded_table, table_inputs


def build_mlp(
    spec: DataSpec,
    units: Sequence[int] = (128, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> keras.Model:
    """A dense stack of `units` on the flattened input (a table's encoded columns), with the head
    `spec.task` asks for."""
    if spec.is_table:
        inputs = table_inputs(spec)
        x = encoded_table(inputs, spec)
    else:
        inputs = keras.Input(shape=spec.input_shape, name="inputs")
        x = keras.layers.Flatten(name="flatten")(normalized_inputs(inputs, spec))
    for index, width in enumerate(units):
        x = keras.layers.Dense(width, use_bias=not batch_norm, name=f"dense_{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"batch_norm_{index}")(x)
        x = keras.layers.Activation(activation, name=f"{activation}_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    outputs = output_head(x, spec)
    return keras.Model(inputs, outputs, name="mlp")
