"""The reference layers of models/cells.py compute what Keras' built-in layers compute."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.cells import ConvolutionStep, DenseStep, LSTMStep, SimpleRNNStep, sgd_update

TOLERANCE = 1e-5


def _outputs_and_gradients(layer: keras.layers.Layer, x: np.ndarray) -> list[np.ndarray]:
    """The layer's output, then the gradients of a fixed random projection of it.

    Gradients are taken w.r.t. the input and every weight, in `layer.trainable_weights` order.
    """
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        projection = tf.random.stateless_normal(outputs.shape, seed=(1, 2))
        scalar = tf.reduce_sum(outputs * projection)
    gradients = tape.gradient(scalar, [inputs, *layer.trainable_weights])
    return [outputs.numpy(), *(gradient.numpy() for gradient in gradients)]


def _assert_same_function(builtin: keras.layers.Layer, reference: keras.layers.Layer, x: np.ndarray) -> None:
    builtin(x)
    reference(x)
    reference.set_weights(builtin.get_weights())
    expected = _outputs_and_gradients(builtin, x)
    actual = _outputs_and_gradients(reference, x)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.fixture
def rng() -> np.random.Generator:
    keras.utils.set_random_seed(0)
    return np.random.default_rng(0)


def test_dense_step_matches_dense(rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 6)).astype("float32")
    _assert_same_function(keras.layers.Dense(5, activation="sigmoid"), DenseStep(5, activation="sigmoid"), x)


def test_convolution_step_matches_valid_conv2d(rng: np.random.Generator) -> None:
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    _assert_same_function(
        keras.layers.Conv2D(4, (3, 2), padding="valid", activation="relu"),
        ConvolutionStep(4, (3, 2), activation="relu"),
        x,
    )


def test_simple_rnn_step_matches_simple_rnn(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    _assert_same_function(
        keras.layers.SimpleRNN(6, return_sequences=True),
        keras.layers.RNN(SimpleRNNStep(6), return_sequences=True),
        x,
    )


def test_lstm_step_matches_lstm(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    _assert_same_function(
        keras.layers.LSTM(6, return_sequences=True),
        keras.layers.RNN(LSTMStep(6), return_sequences=True),
        x,
    )


def test_lstm_step_starts_with_forget_bias_one() -> None:
    cell = LSTMStep(3)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_sgd_update_matches_keras_sgd(rng: np.random.Generator) -> None:
    def small_classifier() -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(8, activation="tanh"),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )

    x = rng.normal(size=(6, 5)).astype("float32")
    y = rng.integers(0, 3, size=(6,))
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    by_keras, by_hand = small_classifier(), small_classifier()
    by_hand.set_weights(by_keras.get_weights())
    before = by_keras.get_weights()

    by_keras.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=loss_fn)
    by_keras.train_on_batch(x, y)
    sgd_update(by_hand, x, y, loss_fn, learning_rate=0.5)

    for got, want, old in zip(by_hand.get_weights(), by_keras.get_weights(), before, strict=True):
        assert not np.allclose(want, old)
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)


def test_reference_layers_survive_serialization() -> None:
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            ConvolutionStep(2, 3, activation="relu"),
            keras.layers.Reshape((4, 8)),
            keras.layers.RNN(LSTMStep(3), return_sequences=True),
            keras.layers.RNN(SimpleRNNStep(3)),
            DenseStep(2, activation="softmax"),
        ]
    )
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    restored.set_weights(model.get_weights())
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 1)).astype("float32")
    np.testing.assert_allclose(restored(x), model(x), atol=TOLERANCE)
