"""The output layer every builder ends with, chosen by the data's task."""

from __future__ import annotations

import keras

from models.spec import DataSpec

# Keras' default (0.99) lets the moving statistics trail far behind the batch statistics on the
# few hundred steps a small dataset gives; the model then scores near chance at inference.
BATCH_NORM_MOMENTUM = 0.9


def normalized_inputs(inputs: keras.KerasTensor, spec: DataSpec) -> keras.KerasTensor:
    """The inputs standardised with the train split's statistics when the spec carries them."""
    if spec.input_mean is None:
        return inputs
    return keras.layers.Normalization(
        mean=list(spec.input_mean), variance=list(spec.input_variance), name="normalization"
    )(inputs)


def output_head(
    features: keras.KerasTensor,
    spec: DataSpec,
    suffix: str = "",
    offset: keras.KerasTensor | None = None,
) -> keras.KerasTensor:
    """Softmax probabilities for classification, a linear layer for regression (layer names end in
    `suffix`, for the members of an ensemble); `offset` is added to the logits (the standardised
    prediction) first.

    The head computes in float32 so that a mixed-precision body still serves stable outputs. A
    regression target with a mean and scale is predicted standardised, then mapped back to its units.
    """
    if spec.task not in ("classification", "regression"):
        raise ValueError(f"task {spec.task!r} has no supervised head; allowed: classification, regression")
    classifies = spec.task == "classification"
    final = f"probabilities{suffix}" if classifies else f"prediction{suffix}"
    if offset is None:
        output = keras.layers.Dense(
            spec.output_units, activation="softmax" if classifies else None, dtype="float32", name=final
        )(features)
    else:
        own = keras.layers.Dense(spec.output_units, dtype="float32", name=f"head{suffix}")(features)
        summed = f"logits{suffix}" if classifies else final
        output = keras.layers.Add(dtype="float32", name=summed)([own, offset])
        if classifies:
            output = keras.layers.Activation("softmax", dtype="float32", name=final)(output)
    if classifies or (spec.target_mean, spec.target_scale) == (0.0, 1.0):
        return output
    return keras.layers.Rescaling(
        spec.target_scale, offset=spec.target_mean, dtype="float32", name=f"target_units{suffix}"
    )(output)
