"""Recurrent builders: shapes, text input, training, SavedModel export and the gradient probe."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.recurrent import (
    adapt_text_vocabulary,
    build_lstm,
    build_rnn,
    hidden_state_gradient_norms,
)
from models.registry import build
from models.spec import DataSpec

DIGITS = DataSpec(input_shape=(8, 8, 1), task="classification", num_classes=10)
SEQUENCE = DataSpec(input_shape=(12, 3), task="regression", num_outputs=2)
TEXT = DataSpec(input_shape=(), task="classification", num_classes=2, input_dtype="string")
CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the cat chased the dog",
    "birds sing in the morning",
]


@pytest.fixture(autouse=True)
def fixed_seed() -> None:
    keras.utils.set_random_seed(0)


def _random_inputs(spec: DataSpec, batch: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(batch, *spec.input_shape)).astype("float32")


@pytest.mark.parametrize(
    ("spec", "expected_width"),
    [
        (DIGITS, 10),
        (SEQUENCE, 2),
        (DataSpec(input_shape=(20,), task="regression"), 1),
        (DataSpec(input_shape=(16,), task="classification", num_classes=3), 3),
    ],
    ids=["image", "sequence", "scalar-sequence", "vector"],
)
@pytest.mark.parametrize("builder", [build_rnn, build_lstm], ids=["rnn", "lstm"])
def test_output_shape_follows_spec(builder, spec: DataSpec, expected_width: int) -> None:
    model = builder(spec, units=(8, 6), dense_units=(5,), dropout=0.1)
    assert model(_random_inputs(spec)).shape == (4, expected_width)


def test_image_rows_are_time_steps() -> None:
    model = build_rnn(DataSpec(input_shape=(5, 4, 3), num_classes=2), units=(7,))
    assert model.get_layer("recurrent_0").input.shape == (None, 5, 12)


def test_classification_outputs_probabilities() -> None:
    probabilities = build_lstm(DIGITS, units=(8,))(_random_inputs(DIGITS)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()


@pytest.mark.parametrize(
    ("builder", "layer_class"),
    [(build_rnn, keras.layers.SimpleRNN), (build_lstm, keras.layers.LSTM)],
    ids=["rnn", "lstm"],
)
def test_bidirectional_final_state_reads_whole_sequence_both_ways(builder, layer_class) -> None:
    model = builder(SEQUENCE, units=(5,), bidirectional=True)
    final_state = keras.Model(model.input, model.get_layer("final_state").output)
    # A Bidirectional layer without return_sequences is the definition of its final state.
    plain = keras.layers.Bidirectional(layer_class(5))
    x = _random_inputs(SEQUENCE)
    plain(x)
    plain.set_weights(model.get_layer("bidirectional_0").get_weights())
    assert final_state(x).shape == (4, 10)
    np.testing.assert_allclose(final_state(x), plain(x), atol=1e-6)


def test_gru_cell_builds_a_gru() -> None:
    model = build_lstm(SEQUENCE, units=(6,), cell="gru")
    assert isinstance(model.get_layer("recurrent_0"), keras.layers.GRU)
    assert model(_random_inputs(SEQUENCE)).shape == (4, 2)


def test_reference_gru_is_refused_with_the_allowed_choices() -> None:
    with pytest.raises(ValueError, match="allowed: cell='lstm'"):
        build_lstm(SEQUENCE, cell="gru", implementation="reference")


# In `make test-slow` (make test's time budget): the reference cells compute what Keras' do in
# test_cells.py, and export below.
@pytest.mark.slow
@pytest.mark.parametrize("builder", [build_rnn, build_lstm], ids=["rnn", "lstm"])
def test_reference_implementation_trains_with_fit(builder) -> None:
    model = builder(DIGITS, units=(6,), implementation="reference", bidirectional=True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = _random_inputs(DIGITS, batch=16)
    y = np.random.default_rng(1).integers(0, 10, size=(16,))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_reference_and_keras_rnn_models_agree_with_the_same_weights() -> None:
    by_keras = build_lstm(SEQUENCE, units=(6, 4))
    by_reference = build_lstm(SEQUENCE, units=(6, 4), implementation="reference")
    by_reference.set_weights(by_keras.get_weights())
    x = _random_inputs(SEQUENCE)
    np.testing.assert_allclose(by_reference(x), by_keras(x), atol=1e-5)


def test_registry_builds_rnn_and_lstm() -> None:
    assert build("rnn", SEQUENCE, units=(4,)).name == "rnn"
    assert build("lstm", SEQUENCE, units=(4,)).name == "lstm"


def test_text_model_reads_raw_strings() -> None:
    vocabulary = adapt_text_vocabulary(CORPUS, max_tokens=50)
    assert vocabulary[:2] == ["", "[UNK]"] and "cat" in vocabulary
    model = build_lstm(TEXT, units=(8,), vocabulary=vocabulary, sequence_length=10)
    probabilities = model(tf.constant(CORPUS))
    assert probabilities.shape == (4, 2)


def test_text_model_ignores_end_padding() -> None:
    vocabulary = adapt_text_vocabulary(CORPUS, max_tokens=50)
    short = build_rnn(TEXT, units=(8,), vocabulary=vocabulary, sequence_length=8)
    long = build_rnn(TEXT, units=(8,), vocabulary=vocabulary, sequence_length=40)
    long.set_weights(short.get_weights())
    texts = tf.constant(CORPUS)
    np.testing.assert_allclose(long(texts), short(texts), atol=1e-6)


def test_text_model_without_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="adapt_text_vocabulary"):
        build_rnn(TEXT)


# The gru and the reference rnn export in `make test-slow` (make test's time budget): the same
# export path as the lstm and the reference lstm.
@pytest.mark.parametrize(
    ("builder", "spec", "hparams"),
    [
        (build_rnn, DIGITS, {"units": (6, 4), "dense_units": (5,)}),
        (build_lstm, SEQUENCE, {"units": (6,), "bidirectional": True}),
        pytest.param(build_lstm, DIGITS, {"units": (6,), "cell": "gru"}, marks=pytest.mark.slow),
        (build_lstm, SEQUENCE, {"units": (6,), "implementation": "reference"}),
        pytest.param(
            build_rnn, DIGITS, {"units": (6,), "implementation": "reference"}, marks=pytest.mark.slow
        ),
    ],
    ids=["rnn", "bidirectional-lstm", "gru", "reference-lstm", "reference-rnn"],
)
def test_export_reload_matches_keras_outputs(builder, spec, hparams, tmp_path: Path) -> None:
    model = builder(spec, **hparams)
    x = _random_inputs(spec)
    model.export(str(tmp_path / "model"), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "model"))
    served = reloaded.serve(tf.constant(x))
    assert np.abs(served.numpy() - model(x).numpy()).max() < 1e-5


def test_text_model_exports_a_string_signature(tmp_path: Path) -> None:
    vocabulary = adapt_text_vocabulary(CORPUS, max_tokens=50)
    model = build_lstm(TEXT, units=(8,), vocabulary=vocabulary, sequence_length=10)
    model.export(str(tmp_path / "text"), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "text"))
    texts = tf.constant([*CORPUS, "an unseen sentence about the cat"])
    signature = reloaded.signatures["serving_default"]
    served = next(iter(signature(texts).values()))
    assert np.abs(served.numpy() - model(texts).numpy()).max() < 1e-5


@pytest.mark.parametrize("builder", [build_rnn, build_lstm], ids=["rnn", "lstm"])
def test_gradient_norms_have_one_finite_value_per_step(builder) -> None:
    model = builder(SEQUENCE, units=(6, 4))
    y = np.zeros((4, 2), dtype="float32")
    norms = hidden_state_gradient_norms(model, _random_inputs(SEQUENCE), y, keras.losses.MeanSquaredError())
    assert norms.shape == (12,)
    assert np.isfinite(norms).all() and (norms > 0).all()


def test_gradient_norm_is_the_total_derivative_through_later_steps() -> None:
    model = build_rnn(SEQUENCE, units=(6,))
    recurrent, head = model.get_layer("recurrent_0"), model.get_layer("prediction")
    x = _random_inputs(SEQUENCE)
    y = np.ones((4, 2), dtype="float32")
    loss_fn = keras.losses.MeanSquaredError()
    t = 5
    # Independently: restart Keras' own loop from h_t as its initial state and differentiate.
    h_t = recurrent(x[:, : t + 1])[:, -1]
    with tf.GradientTape() as tape:
        tape.watch(h_t)
        later_states = recurrent(x[:, t + 1 :], initial_state=h_t)
        loss = loss_fn(y, head(later_states[:, -1]))
    expected = np.linalg.norm(tape.gradient(loss, h_t), axis=-1).mean()

    norms = hidden_state_gradient_norms(model, x, y, loss_fn)
    np.testing.assert_allclose(norms[t], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: build_lstm(SEQUENCE, units=(5,), bidirectional=True),
        lambda: build_lstm(SEQUENCE, units=(5,), implementation="reference"),
        lambda: build_lstm(SEQUENCE, units=(5,), cell="gru"),
    ],
    ids=["bidirectional-lstm", "reference-lstm", "gru"],
)
def test_gradient_norms_cover_other_recurrent_layers(make_model) -> None:
    norms = hidden_state_gradient_norms(
        make_model(), _random_inputs(SEQUENCE), np.zeros((4, 2)), keras.losses.MeanSquaredError()
    )
    assert norms.shape == (12,)
    assert np.isfinite(norms).all() and (norms > 0).all()


def test_simple_rnn_gradients_vanish_faster_than_lstm_gradients() -> None:
    spec = DataSpec(input_shape=(50,), task="classification", num_classes=2)
    x = _random_inputs(spec, batch=8)
    y = np.random.default_rng(1).integers(0, 2, size=(8,))
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    rnn = build_rnn(spec, units=(16,))
    recurrent = rnn.get_layer("recurrent_0")
    kernel, recurrent_kernel, bias = recurrent.get_weights()
    # Small recurrent weights: each step back multiplies the gradient by at most 0.5.
    recurrent.set_weights([kernel, 0.5 * recurrent_kernel, bias])
    rnn_norms = hidden_state_gradient_norms(rnn, x, y, loss_fn)
    lstm_norms = hidden_state_gradient_norms(build_lstm(spec, units=(16,)), x, y, loss_fn)

    rnn_ratio = rnn_norms[0] / rnn_norms[-1]
    lstm_ratio = lstm_norms[0] / lstm_norms[-1]
    assert rnn_ratio < 1e-6
    assert rnn_ratio < 1e-3 * lstm_ratio


def test_keras_file_round_trip_keeps_custom_layers(tmp_path: Path) -> None:
    model = build_rnn(SEQUENCE, units=(5,), bidirectional=True, implementation="reference")
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    x = _random_inputs(SEQUENCE)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
