"""How the train stage compiles a model: XLA where it helps, never where it makes training crawl."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from models.spec import DataSpec
from pipelines.config import TrainConfig
from pipelines.stages.train import XLA_OFF_REASON, build_training_state, compile_model, random_layers

from .conftest import TINY, all_runs

DIGITS = [*TINY, "model.units=[16]", "train.jit_compile=true"]


def _train_run(uri: str):
    return next(run for run in all_runs(uri) if run.data.tags.get("stage") == "train")


# That XLA stays on without random layers: test_pipeline's stage-by-stage train run has no xla_off tag.
# make test's time budget: make test finds the random layers below without training.
@pytest.mark.slow
def test_xla_is_off_on_a_cpu_for_a_model_with_dropout_and_says_so(store, cli):
    # XLA's random numbers on a CPU made a cnn-mnist1d epoch with dropout 0.1 take 7.8 s, not 0.5 s.
    status, output, error = cli("train", "-e", "mlp-digits", *DIGITS, "model.dropout=0.2")
    assert status == 0, error
    assert f"note: train.jit_compile: {XLA_OFF_REASON} (dropout_0)" in output
    run = _train_run(store)
    assert run.data.tags["xla_off"] == XLA_OFF_REASON
    assert run.data.params["train.jit_compile"] == "True"  # what was asked stays on record


@pytest.mark.parametrize(
    ("architecture", "hparams", "expected"),
    [
        ("lstm", {}, []),  # its cells hold a seed generator, but drop nothing
        ("lstm", {"dropout": 0.2}, ["dropout_0"]),
        ("cnn", {"dropout": 0.1}, ["dropout_0", "dropout_1", "dense_dropout_0"]),
        ("cnn", {}, []),
    ],
)
def test_random_layers_are_those_that_draw_random_numbers_in_training(architecture, hparams, expected):
    spec = DataSpec((40, 1), num_classes=10)
    assert random_layers(models.build(architecture, spec, **hparams)) == expected


def test_the_train_step_is_traced_once_when_its_state_is_built_before_fit(monkeypatch):
    import tensorflow as tf

    traced = []
    plain_step = keras.Model.train_step

    def counted_step(model, data):
        traced.append(model.name)
        return plain_step(model, data)

    monkeypatch.setattr(keras.Model, "train_step", counted_step)
    rng = np.random.default_rng(0)
    batches = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(64, 8)).astype("float32"), rng.integers(0, 3, 64))
    ).batch(16)
    counts = {}
    for prebuilt in (False, True):
        model = models.build("mlp", DataSpec((8,), num_classes=3), units=[4])
        compile_model(model, TrainConfig(epochs=1), "classification", steps_per_epoch=4)
        if prebuilt:
            build_training_state(model, batches.element_spec)
        traced.clear()
        model.fit(batches, epochs=2, verbose=0, shuffle=False)
        counts[prebuilt] = len(traced)
    # Keras 3.15 under the default strategy leaves the optimizer's slots and the metrics' state to
    # the first trace, which TensorFlow then traces again. If that changes, the helper can go.
    assert counts == {False: 2, True: 1}


def test_steps_per_execution_past_an_epochs_batches_trains_the_same_steps_and_weights():
    # mlp-tabular runs 16 batches per call; a small table's epoch has fewer (attrition's 4). Keras
    # must then run each epoch's batches once, no more, no fewer, and land on the same weights.
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(70, 8)).astype("float32"), rng.integers(0, 3, 70)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # 5 batches, the last of 6
    results = {}
    for per_call in (1, 16):
        keras.utils.set_random_seed(0)
        model = models.build("mlp", DataSpec((8,), num_classes=3), units=[8], dropout=0.1)
        compile_model(model, TrainConfig(epochs=3, steps_per_execution=per_call), "classification", 5)
        history = model.fit(batches, validation_data=batches, epochs=3, verbose=0, shuffle=False).history
        results[per_call] = (history, model.get_weights(), int(model.optimizer.iterations.numpy()))
    (history_1, weights_1, steps_1), (history_16, weights_16, steps_16) = results.values()
    assert steps_1 == steps_16 == 15
    np.testing.assert_allclose(history_16["loss"], history_1["loss"], rtol=1e-5)
    np.testing.assert_allclose(history_16["val_loss"], history_1["val_loss"], rtol=1e-5)
    for weight_16, weight_1 in zip(weights_16, weights_1, strict=True):
        np.testing.assert_allclose(weight_16, weight_1, rtol=1e-5, atol=1e-6)
