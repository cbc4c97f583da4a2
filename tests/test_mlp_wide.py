"""The MLP's linear skip: a linear model of the inputs added to every head's logits, starting at zero
and learning faster than the stacks; the option is a validated hyperparameter, off unless asked for."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.config import ConfigError, load_experiment


def _table_spec():
    from models.spec import DataSpec, TableColumn

    return DataSpec(
        input_shape=(2,),
        num_classes=2,
        columns=(
            TableColumn("x", "x", "numeric", bin_edges=(0.0, 1.0, 2.0)),
            # 20 values and a bucket: past the one-hot limit, so embedded (and weighed one by one).
            TableColumn("town", "town", "categorical", vocabulary=tuple(f"t{i}" for i in range(20))),
        ),
    )


def _rows():
    return {"x": np.array([-1.0, 0.5, 3.0], np.float32), "town": np.array(["t0", "t7", "never"], object)}


def test_the_linear_skip_starts_at_zero_and_adds_its_scaled_output_to_every_heads_logits():
    import keras

    from models.mlp import LINEAR_SKIP_RATE, build_mlp

    spec = _table_spec()
    model = build_mlp(spec, units=[8], ensemble=2, linear_skip=True)
    rows = _rows()
    skip = model.get_layer("linear_skip")
    town = model.get_layer("linear_skip_town")
    assert not np.any(skip.kernel.numpy()) and not np.any(town.embeddings.numpy()), "starts at zero"
    assert skip.kernel.shape == (1, 2), "reads the standardised number, not its bins"
    assert town.embeddings.shape == (21, 2), "a weight per value of the category, and the bucket"

    skip.kernel.assign([[0.01, -0.02]])
    skip.bias.assign([0.03, 0.0])
    town.embeddings.assign(np.linspace(-0.05, 0.05, 42, dtype=np.float32).reshape(21, 2))
    parts = keras.Model(
        model.inputs,
        [model.get_layer(f"head_{member}").output for member in range(2)] + [skip.output, town.output],
    )
    *heads, linear, per_town = (np.asarray(output) for output in parts(rows))
    offset = LINEAR_SKIP_RATE * (linear + per_town)
    assert np.abs(offset).max() > 0.5, "the assigned weights move the logits"
    expected = np.mean([_softmax(head + offset) for head in heads], axis=0)
    np.testing.assert_allclose(np.asarray(model(rows)), expected, rtol=1e-5, atol=1e-6)

    plain = build_mlp(spec, units=[8])
    assert plain.get_layer("probabilities").kernel.shape == (8, 2), "off by default"
    assert not any(layer.name.startswith("linear_skip") for layer in plain.layers)


def test_a_regression_head_adds_the_skip_to_its_standardised_prediction():
    from models.mlp import LINEAR_SKIP_RATE, build_mlp
    from models.spec import DataSpec

    spec = DataSpec(input_shape=(3,), task="regression", target_mean=10.0, target_scale=2.0)
    model = build_mlp(spec, units=[4], linear_skip=True)
    rows = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    before = np.asarray(model(rows))
    model.get_layer("linear_skip").bias.assign([0.5])
    # In target units: the standardised prediction moves by the rate times 0.5, times the scale 2.
    np.testing.assert_allclose(np.asarray(model(rows)) - before, LINEAR_SKIP_RATE * 0.5 * 2.0, rtol=1e-5)


def test_the_skip_fits_a_linear_rule_the_stacks_alone_are_slow_to_learn():
    """A linear rule over 30 numbers, 40 steps at mlp-tabular's learning rate: the linear skip gets
    it nearly right, the same MLP without it does not."""
    import keras

    from models.mlp import build_mlp
    from models.spec import DataSpec

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 30)).astype(np.float32)
    y = (x @ rng.normal(size=30) > 0).astype(np.int64)
    spec = DataSpec(input_shape=(30,), num_classes=2)
    accuracy = {}
    for skip in (False, True):
        keras.utils.set_random_seed(0)
        model = build_mlp(spec, units=[64, 32], linear_skip=skip)
        model.compile(
            optimizer=keras.optimizers.Adam(3e-4),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x[:768], y[:768], batch_size=96, epochs=5, verbose=0)
        accuracy[skip] = model.evaluate(x[768:], y[768:], verbose=0)[1]
    assert accuracy[True] > 0.85, accuracy
    assert accuracy[True] > accuracy[False] + 0.15, accuracy


def test_linear_skip_is_a_validated_model_option():
    from models.mlp import LINEAR_SKIP_RATE
    from pipelines.config.model import MLPConfig

    assert f"{LINEAR_SKIP_RATE:.0f} times faster" in MLPConfig.model_fields["linear_skip"].description
    assert load_experiment("mlp-digits").hparams()["linear_skip"] is False
    assert load_experiment("mlp-digits", ["model.linear_skip=true"]).hparams()["linear_skip"] is True
    with pytest.raises(ConfigError, match="linear_skip"):
        load_experiment("mlp-digits", ["model.linear_skip=sometimes"])


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
