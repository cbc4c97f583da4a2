"""How a classifier of tables can be trained: label smoothing on class indices, and early stopping
on the score it is judged by (`train.restore_best: auto`). Validated at the edge, passed to Keras."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

import models
from models.spec import DataSpec
from pipelines.config import ConfigError, load_experiment
from pipelines.config.train import TrainConfig
from pipelines.stages.train import (
    SmoothedSparseCategoricalCrossentropy,
    _best_epoch_keeper,
    check_config_fits_data,
    compile_model,
)

PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], np.float32)
LABELS = np.array([0, 1, 0])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.0", "less than 1"), ("-0.1", "greater than or equal to 0"), ("lots", "valid number")],
)
def test_label_smoothing_outside_0_to_1_names_the_field_and_what_is_allowed(value, expected):
    assert load_experiment("mlp-digits").train.label_smoothing == 0.0
    with pytest.raises(ConfigError, match=rf"train\.label_smoothing: .*{value}.*{expected}"):
        load_experiment("mlp-digits", [f"train.label_smoothing={value}"])


def test_the_compiled_loss_smooths_class_indices_as_keras_smooths_one_hot_labels():
    model = models.build("mlp", DataSpec((4,), num_classes=3), units=[8])
    compile_model(model, TrainConfig(label_smoothing=0.1), "classification", steps_per_epoch=1)
    assert isinstance(model.loss, SmoothedSparseCategoricalCrossentropy)
    assert model.loss.label_smoothing == 0.1
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[LABELS], PROBABILITIES)
    for labels in (LABELS, LABELS[:, None]):  # (batch,) and (batch, 1)
        np.testing.assert_allclose(float(model.loss(labels, PROBABILITIES)), float(expected), rtol=1e-6)
    compile_model(model, TrainConfig(), "classification", steps_per_epoch=1)
    assert type(model.loss) is keras.losses.SparseCategoricalCrossentropy, "no smoothing: Keras' own loss"


def test_a_model_trained_with_smoothing_saves_and_loads_compiled(tmp_path):
    model = models.build("mlp", DataSpec((4,), num_classes=3), units=[8])
    compile_model(model, TrainConfig(label_smoothing=0.2), "classification", steps_per_epoch=1)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.loss.label_smoothing == 0.2


def test_auto_restores_the_best_validation_accuracy_of_a_classifier_and_loss_otherwise():
    train = TrainConfig(restore_best="auto", patience=5)
    assert _best_epoch_keeper(train, "classification", steps_per_epoch=4).monitor == "val_accuracy"
    assert _best_epoch_keeper(train, "regression", steps_per_epoch=4).monitor == "val_loss"
    assert (
        _best_epoch_keeper(TrainConfig(patience=5), "classification", steps_per_epoch=4).monitor == "val_loss"
    )


def test_patience_waits_at_least_patience_min_updates_batches_where_an_epoch_is_short():
    train = TrainConfig(restore_best="val_loss", patience=15, patience_min_updates=200)
    # Attrition's 4 batches an epoch: 50 epochs; 7 batches: 29 (rounded up); 135 batches: 15.
    patience = [_best_epoch_keeper(train, "regression", steps).patience for steps in (4, 7, 135)]
    assert patience == [50, 29, 15]
    assert TrainConfig(patience=15).patience_epochs(4) == 15, "unset: train.patience epochs"
    assert TrainConfig(patience_min_updates=200).patience_epochs(4) is None, "no patience: every epoch"


def _prepared(task: str, num_classes: int | None) -> SimpleNamespace:
    spec = DataSpec((4,), num_classes=num_classes, task=task)
    return SimpleNamespace(spec=spec, name="prices", source="npz", forecast=None, location=None)


def test_label_smoothing_on_a_regression_is_refused_naming_the_field():
    config = load_experiment("mlp-digits", ["train.label_smoothing=0.1"])
    check_config_fits_data(config, _prepared("classification", 3))
    with pytest.raises(ConfigError, match=r"train\.label_smoothing: 0\.1 .*'prices'.*allowed: 0"):
        check_config_fits_data(config, _prepared("regression", None))


def test_refit_of_a_gan_or_across_workers_is_refused_naming_the_field():
    check_config_fits_data(
        load_experiment("mlp-digits", ["train.refit=true"]), _prepared("classification", 3)
    )
    for experiment, overrides, reason in [
        ("gan-digits", [], "'gan' does not learn from"),
        ("mlp-digits", ["train.strategy=multi_worker"], "multi_worker does not read"),
    ]:
        config = load_experiment(experiment, ["train.refit=true", *overrides])
        with pytest.raises(ConfigError, match=rf"train\.refit: true .*{reason}; allowed: false"):
            check_config_fits_data(config, _prepared("classification", 10))


def test_refit_auto_refits_a_training_split_up_to_its_size_limit():
    from pipelines.config.train import REFIT_AUTO_MAX_EXAMPLES

    auto = TrainConfig(refit="auto")
    assert auto.refits(REFIT_AUTO_MAX_EXAMPLES) and not auto.refits(REFIT_AUTO_MAX_EXAMPLES + 1)
    assert TrainConfig(refit=True).refits(10**9) and not TrainConfig().refits(10)
