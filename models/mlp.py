"""Multilayer perceptron: a stack of dense layers a = σ(W a_prev + b) on flattened input, or on
the encoded columns of a table (`models.tabular`)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from models.heads import BATCH_NORM_MOMENTUM, normalized_inputs, output_head
from models.spec import DataSpec, TableColumn
from models.tabular import encoded_table, table_inputs

# How much faster the linear skip learns than the stacks: its weights are scaled by this factor, so
# an optimizer step (Adam's, about the learning rate in each weight) moves its output this many times
# further. At mlp-tabular's learning rate (3e-4) a linear model then converges in the first few
# epochs, as a logistic regression or ridge would, while the stacks learn what it leaves.
LINEAR_SKIP_RATE = 100.0


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
    outputs averaged (trained together, on the average's loss). With `linear_skip`, a linear model
    of the inputs (a table's standardised numbers, missing indicators and categories) is added to
    every head's logits (standardised prediction): it starts at zero and learns LINEAR_SKIP_RATE
    times faster than the stacks, which then learn what is not linear."""
    if spec.is_table:
        inputs = table_inputs(spec)
        encoded = encoded_table(inputs, spec)
        features, linear, indices = encoded.features, encoded.linear, encoded.indices
    else:
        inputs = keras.Input(shape=spec.input_shape, name="inputs")
        features = keras.layers.Flatten(name="flatten")(normalized_inputs(inputs, spec))
        linear, indices = features, ()
    offset = _linear_model(linear, indices, spec) if linear_skip else None
    if ensemble == 1:
        x = _dense_stack(features, units, activation, dropout, batch_norm)
        return keras.Model(inputs, output_head(x, spec, offset=offset), name="mlp")
    members = [
        output_head(
            _dense_stack(features, units, activation, dropout, batch_norm, f"member_{member}_"),
            spec,
            f"_{member}",
            offset,
        )
        for member in range(ensemble)
    ]
    return keras.Model(inputs, keras.layers.Average(name="ensemble_mean")(members), name="mlp")


def _linear_model(
    linear: keras.KerasTensor | None, indices: Sequence[tuple[TableColumn, keras.KerasTensor]], spec: DataSpec
) -> keras.KerasTensor:
    """W x + b on the linear features, plus a weight vector per value of each many-valued category,
    all starting at zero and scaled by LINEAR_SKIP_RATE."""
    terms = []
    if linear is not None:
        terms.append(
            keras.layers.Dense(
                spec.output_units, kernel_initializer="zeros", dtype="float32", name="linear_skip"
            )(linear)
        )
    for column, index in indices:
        terms.append(
            keras.layers.Embedding(
                column.cardinality,
                spec.output_units,
                embeddings_initializer="zeros",
                dtype="float32",
                name=f"linear_skip_{column.key}",
            )(index)
        )
    summed = terms[0] if len(terms) == 1 else keras.layers.Add(dtype="float32", name="linear_skip_sum")(terms)
    return keras.layers.Rescaling(LINEAR_SKIP_RATE, dtype="float32", name="linear_skip_rate")(summed)


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
