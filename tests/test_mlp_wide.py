"""The MLP's linear skip (wide and deep): each output layer reads the input features beside the
stack's last layer, and the option is a validated hyperparameter, off unless asked for."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.config import ConfigError, load_experiment

# The encoded width of this spec's one column: asinh of the standardised number and its two bins.
SPEC_FEATURES = 3


def _table_spec():
    from models.spec import DataSpec, TableColumn

    return DataSpec(
        input_shape=(1,),
        num_classes=2,
        columns=(TableColumn("x", "x", "numeric", bin_edges=(0.0, 1.0, 2.0)),),
    )


def test_each_head_reads_the_features_beside_its_stack_with_linear_skip():
    from models.mlp import build_mlp

    spec = _table_spec()
    model = build_mlp(spec, units=[8], ensemble=2, linear_skip=True)
    for member in range(2):
        assert model.get_layer(f"probabilities_{member}").kernel.shape == (8 + SPEC_FEATURES, 2)
    probabilities = np.asarray(model({"x": np.array([-1.0, 0.5, 3.0], np.float32)}))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    plain = build_mlp(spec, units=[8])
    assert plain.get_layer("probabilities").kernel.shape == (8, 2), "off by default"


def test_linear_skip_is_a_validated_model_option():
    assert load_experiment("mlp-digits").hparams()["linear_skip"] is False
    assert load_experiment("mlp-digits", ["model.linear_skip=true"]).hparams()["linear_skip"] is True
    with pytest.raises(ConfigError, match="linear_skip"):
        load_experiment("mlp-digits", ["model.linear_skip=sometimes"])
