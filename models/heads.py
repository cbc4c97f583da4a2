"""The output layer every builder ends with, chosen by the data's task."""

from __future__ import annotations

import keras

from models.spec import DataSpec

# Keras' default (0.99) lets the moving statistics trail far behind the batch statistics on the
# few hundred steps a small dataset gives; the model then scores near chance at inference.
BATCH_NORM_MOMENTUM = 0.9


def output_head(features: keras.KerasTensor, spec: DataSpec) -> keras.KerasTensor:
    """Softmax probabilities for classification, a linear layer for regression.

    The head computes in float32 so that a mixed-precision body still serves stable outputs.
    """
    if spec.task == "classification":
        return keras.layers.Dense(
            spec.output_units, activation="softmax", dtype="float32", name="probabilities"
        )(features)
    if spec.task == "regression":
        return keras.layers.Dense(spec.output_units, dtype="float32", name="prediction")(features)
    raise ValueError(f"task {spec.task!r} has no supervised head; allowed: classification, regression")
