"""The CNN for photo folders: residual and separable blocks, a strided stem, train-only augmentation
layers inside the model, and the shipped `cnn-images` experiment."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from models.spec import DataSpec
from pipelines.config import ConfigError, load_experiment

IMAGES = DataSpec((32, 32, 3), num_classes=4)
AUGMENTATION = {"random_flip": "horizontal", "random_translation": 0.2, "random_contrast": 0.5}


def _images(count: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *IMAGES.input_shape), dtype=np.float32)


def test_default_cnn_config_builds_the_same_model_as_before():
    # Parameter counts and layer names of cnn-digits and cnn-mnist1d before block, separable,
    # stem_stride and random_* existed.
    digits = models.build(
        "cnn", DataSpec((8, 8, 1), num_classes=10), **load_experiment("cnn-digits").hparams()
    )
    assert digits.count_params() == 36202
    assert [layer.name for layer in digits.layers] == [
        "inputs",
        "conv_0",
        "batch_norm_0",
        "relu_0",
        "pool_0",
        "dropout_0",
        "conv_1",
        "batch_norm_1",
        "relu_1",
        "pool_1",
        "dropout_1",
        "flatten",
        "dense_0",
        "dense_dropout_0",
        "probabilities",
    ]
    mnist1d = models.build("cnn", DataSpec((40,), num_classes=10), **load_experiment("cnn-mnist1d").hparams())
    assert mnist1d.count_params() == 33066


def test_residual_blocks_after_a_strided_stem_keep_the_shapes():
    model = models.build(
        "cnn", IMAGES, filters=[8, 16, 16], stem_stride=2, block="residual", pooling="none", dense_units=[]
    )
    assert model.get_layer("conv_0").output.shape == (None, 16, 16, 8)  # the stem halves 32 pixels
    assert isinstance(model.get_layer("residual_1"), keras.layers.Add)
    assert model.get_layer("residual_1").output.shape == (None, 16, 16, 16)
    assert model.get_layer("conv_1_projection").output.shape == (None, 16, 16, 16)  # 8 -> 16 filters
    with pytest.raises(ValueError):
        model.get_layer("conv_2_projection")  # 16 -> 16 filters: the identity skip
    assert model.output.shape == (None, 4)


def test_separable_blocks_use_separable_convs_after_the_full_stem():
    model = models.build("cnn", IMAGES, filters=[8, 16], separable=True, block="residual", dense_units=[])
    assert type(model.get_layer("conv_0")) is keras.layers.Conv2D
    assert type(model.get_layer("conv_1a")) is keras.layers.SeparableConv2D
    assert type(model.get_layer("conv_1b")) is keras.layers.SeparableConv2D
    plain = models.build("cnn", IMAGES, filters=[8, 16], dense_units=[])
    separable = models.build("cnn", IMAGES, filters=[8, 16], separable=True, dense_units=[])
    assert separable.count_params() < plain.count_params()
    assert separable(_images()).shape == (8, 4)


def test_residual_separable_blocks_work_on_sequences_too():
    model = models.build(
        "cnn", DataSpec((40,), num_classes=3), filters=[8, 16], block="residual", separable=True
    )
    assert type(model.get_layer("conv_1a")) is keras.layers.SeparableConv1D
    assert model.output.shape == (None, 3)


def test_augmentation_changes_images_in_training_only():
    model = models.build("cnn", IMAGES, filters=[8], **AUGMENTATION)
    augmentation = model.get_layer("image_augmentation")
    images = _images()
    assert not np.allclose(augmentation(images, training=True), images)
    # Keras' own random layers augment when called without `training`, as `model.export` serves.
    np.testing.assert_array_equal(augmentation(images), images)
    np.testing.assert_array_equal(augmentation(images, training=False), images)


def test_image_augmentation_on_sequences_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="random_translation"):
        models.build("cnn", DataSpec((40,), num_classes=3), random_translation=0.1)
    with pytest.raises(ConfigError, match=r"model\.random_flip=horizontal .*sequences of 'mnist1d'"):
        load_experiment("cnn-mnist1d", ["model.random_flip=horizontal"])


def test_residual_block_with_valid_padding_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match=r"model\.block: 'residual' .*padding 'same'"):
        load_experiment("cnn-digits", ["model.block=residual", "model.padding=valid"])


def test_cnn_images_needs_a_folder_and_builds_for_128_pixel_rgb(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.path: required when data\.source is 'images'"):
        load_experiment("cnn-images")
    config = load_experiment("cnn-images", [f"data.path={tmp_path / 'photos'}"])
    assert config.data.image_size == [128, 128] and not config.data.grayscale
    model = models.build("cnn", DataSpec((128, 128, 3), num_classes=5), **config.hparams())
    assert isinstance(model.get_layer("global_pool"), keras.layers.GlobalAveragePooling2D)
    assert model.output.shape == (None, 5)


def test_exported_saved_model_serves_what_predict_computes_despite_augmentation(tmp_path):
    import tensorflow as tf

    config = load_experiment("cnn-images", [f"data.path={tmp_path}", "model.filters=[8,16]"])
    model = models.build("cnn", IMAGES, **config.hparams())
    model.compile("adam", "sparse_categorical_crossentropy")
    # One training step moves the batch-norm statistics and the augmentation layers' seeds.
    model.fit(_images(16), np.arange(16) % 4, batch_size=16, epochs=1, verbose=0)
    model.export(str(tmp_path / "saved_model"), format="tf_saved_model", verbose=False)
    serve = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    images = _images(4, seed=1)
    (served,) = serve(tf.constant(images)).values()
    np.testing.assert_allclose(served.numpy(), model.predict(images, verbose=0), atol=1e-5)


def test_saved_keras_model_reloads_with_its_augmentation_layer(tmp_path):
    model = models.build("cnn", IMAGES, filters=[8], **AUGMENTATION)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.get_layer("image_augmentation").get_config() == (
        model.get_layer("image_augmentation").get_config()
    )
    np.testing.assert_allclose(reloaded.predict(_images(), verbose=0), model.predict(_images(), verbose=0))
