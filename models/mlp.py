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
    ensemble: int = 1,
    linear_skip: bool = False,
) -> keras.Model:
    """A dense stack of `units` on the flattened input (a table's encoded columns), with the head
    `spec.task` asks for; with `ensemble` > 1, that many stacks and heads on the same inputs, their
    outputs averaged (trained together, on the average's loss). With `linear_skip`, each head also
    reads the input features themselves (wide and deep): a linear model of them plus what the
    stack adds."""
    if spec.is_table:
        inputs = table_inputs(spec)
        features = encoded_table(inputs, spec)
    else:
        inputs = keras.Input(shape=spec.input_shape, name="inputs")
        features = keras.layers.Flatten(name="flatten")(normalized_inputs(inputs, spec))

    def head_inputs(hidden: keras.KerasTensor, suffix: str = "") -> keras.KerasTensor:
        if not linear_skip:
            return hidden
        return keras.layers.Concatenate(name=f"linear_skip{suffix}")([hidden, features])

    if ensemble == 1:
        x = _dense_stack(features, units, activation, dropout, batch_norm)
        return keras.Model(inputs, output_head(head_inputs(x), spec), name="mlp")
    members = [
        output_head(
            head_inputs(
                _dense_stack(features, units, activation, dropout, batch_norm, f"member_{member}_"),
                f"_{member}",
            ),
            spec,
            f"_{member}",
        )
        for member in range(ensemble)
    ]
    return keras.Model(inputs, keras.layers.Average(name="ensemble_mean")(members), name="mlp")


def _dense_stack(
    x: keras.KerasTensor,
    units: Sequence[int],
    activation: str,
    dropout: float,
    batch_norm: bool,
    prefix: str = "",
) -> keras.KerasTensor:
    for index, width in enumerate(units):
        x = keras.layers.Dense(width, use_bias=not batch_norm, name=f"{prefix}dense_{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(
                momentum=BATCH_NORM_MOMENTUM, name=f"{prefix}batch_norm_{index}"
            )(x)
        x = keras.layers.Activation(activation, name=f"{prefix}{activation}_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}dropout_{index}")(x)
    return x
