"""Your own models for deeparch: builders an experiment file names by import path.

A builder takes the `DataSpec` (input shape, task, number of classes, the train split's statistics)
and keyword arguments with defaults, and returns an uncompiled `keras.Model`; the pipeline compiles,
trains, evaluates, exports and serves it. `residual-mlp-digits.yaml` beside this file uses one.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from models.spec import DataSpec


def build_residual_mlp(
    spec: DataSpec, width: int = 64, blocks: int = 2, dropout: float = 0.0, activation: str = "relu"
) -> keras.Model:
    """A dense layer of `width`, then `blocks` residual blocks x + Dense(Dense(x)), then the head."""
    inputs = keras.Input(shape=spec.input_shape, name="inputs")
    x = keras.layers.Flatten()(inputs)
    if spec.input_mean is not None:  # raw-valued data (a user's CSV): standardise inside the model
        x = keras.layers.Normalization(mean=list(spec.input_mean), variance=list(spec.input_variance))(x)
    x = keras.layers.Dense(width, activation=activation)(x)
    for _ in range(blocks):
        residual = keras.layers.Dense(width, activation=activation)(x)
        residual = keras.layers.Dropout(dropout)(residual)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(width)(residual))
    return keras.Model(inputs, _head(x, spec), name="residual_mlp")


# A model subclass needs a name Keras can save and load it under, as a logged MLflow model does.
@keras.saving.register_keras_serializable(package="examples")
class GradientNormModel(keras.Model):
    """A functional model whose own `train_step` also reports the gradients' global norm, as a
    metric `fit`, the progress line and MLflow's curves show like the loss."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gradient_norm = keras.metrics.Mean(name="gradient_norm")

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.gradient_norm.update_state(tf.linalg.global_norm(gradients))
        return self.compute_metrics(x, y, y_pred)


def build_gradient_norm_mlp(spec: DataSpec, width: int = 64) -> keras.Model:
    """One hidden layer of `width`, trained by `GradientNormModel.train_step`."""
    inputs = keras.Input(shape=spec.input_shape, name="inputs")
    x = keras.layers.Dense(width, activation="relu")(keras.layers.Flatten()(inputs))
    return GradientNormModel(inputs, _head(x, spec), name="gradient_norm_mlp")


def _head(x: keras.KerasTensor, spec: DataSpec) -> keras.KerasTensor:
    """Class probabilities for classification, the raw values for regression."""
    if spec.task == "classification":
        return keras.layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.layers.Dense(spec.num_outputs, name="prediction")(x)
