"""Datasets through TFDS: the embedded builders offline, the catalog with mock data."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.config import DataConfig, TrainConfig
from pipelines.data import DataError, Split, as_tf_dataset, load_dataset


def test_digits_has_fixed_disjoint_splits_of_8x8_images():
    dataset = load_dataset(DataConfig(name="digits"))
    assert dataset.sizes() == {"train": 1258, "validation": 270, "test": 269}
    assert dataset.spec.input_shape == (8, 8, 1)
    assert dataset.spec.num_classes == 10
    x = dataset.arrays("train").x
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    rows = {name: {s.tobytes() for s in dataset.arrays(name).x} for name in dataset.splits}
    assert not rows["train"] & rows["test"]
    assert dataset.digest == load_dataset(DataConfig(name="digits")).digest


def test_mnist1d_test_split_is_exactly_the_published_one_and_validation_comes_from_train():
    from pipelines.datasets import mnist1d

    # make_dataset(get_dataset_args()) of the mnist1d package, as the builder reads it (generated
    # once per process: 2 s of CPU).
    published = mnist1d.published()
    dataset = load_dataset(DataConfig(name="mnist1d"))
    assert dataset.sizes() == {"train": 3600, "validation": 400, "test": 1000}
    assert dataset.spec.input_shape == (40,)

    def as_rows(x, y):
        return sorted(zip((row.astype(np.float32).tobytes() for row in x), y.tolist(), strict=True))

    assert as_rows(dataset.arrays("test").x, dataset.arrays("test").y) == as_rows(
        published["x_test"], published["y_test"]
    )
    train_and_validation = np.concatenate([dataset.arrays("train").x, dataset.arrays("validation").x])
    assert as_rows(
        train_and_validation, np.concatenate([dataset.arrays("train").y, dataset.arrays("validation").y])
    ) == as_rows(published["x"], published["y"])


def test_max_examples_caps_every_split():
    dataset = load_dataset(DataConfig(name="mnist1d", max_examples=50))
    assert set(dataset.sizes().values()) == {50}


def test_catalog_dataset_loads_through_tfds_with_mock_data(store):
    # A store of its own: the prepared-dataset index of an earlier test's store (MLflow's tracking
    # URI is process-wide) would hand back that test's mock MNIST of another size.
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=24):
        dataset = load_dataset(DataConfig(name="mnist", download=False))
    assert dataset.source == "tfds-catalog"
    assert dataset.spec.input_shape == (28, 28, 1)
    assert dataset.spec.num_classes == 10
    assert set(dataset.splits) == {"train", "validation", "test"}
    assert len(dataset.splits["train"]) + len(dataset.splits["validation"]) == 24


def test_catalog_dataset_that_cannot_be_fetched_fails_fast_listing_embedded_ones(tmp_path):
    with pytest.raises(DataError) as error:
        load_dataset(DataConfig(name="mnist", download=False, data_dir=str(tmp_path)))
    assert "mnist" in str(error.value)
    assert "digits, mnist1d" in str(error.value)


def test_augmentation_touches_only_the_shuffled_training_pipeline():
    x = np.tile(np.arange(10, dtype=np.float32), (8, 1))
    split = Split(x, np.zeros(8, dtype=np.int32))
    train = TrainConfig(augment_shift=3, augment_scale=0.2)
    ((augmented, _),) = as_tf_dataset(split, 8, shuffle=True, seed=1, train=train).take(1)
    ((plain, _),) = as_tf_dataset(split, 8, train=train).take(1)
    np.testing.assert_array_equal(plain.numpy(), x)
    assert not np.allclose(np.sort(augmented.numpy(), axis=1), np.sort(x, axis=1)) or not np.array_equal(
        augmented.numpy(), x
    )


def test_image_augmentation_translates_each_image_by_at_most_the_shift_with_zero_fill():
    rng = np.random.default_rng(0)
    x = np.zeros((16, 8, 8, 1), dtype=np.float32)
    x[:, 2:6, 2:6, 0] = rng.uniform(0.5, 1.0, size=(16, 4, 4))  # a patch away from the border
    split = Split(x, np.arange(16, dtype=np.int32))
    train = TrainConfig(augment_shift=1)
    ((augmented, labels),) = as_tf_dataset(split, 16, shuffle=True, seed=3, train=train).take(1)
    moves = set()
    for image, label in zip(augmented.numpy(), labels.numpy(), strict=True):
        original = x[label]
        # Exactly one translation by (dy, dx), |dy|, |dx| <= 1, reproduces the augmented image.
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if np.array_equal(np.roll(original, (dy, dx), axis=(0, 1)), image)
        ]
        assert len(matches) == 1
        moves.add(matches[0])
    assert len(moves) > 1  # each image draws its own translation
    ((plain, _),) = as_tf_dataset(split, 16, train=train).take(1)
    np.testing.assert_array_equal(plain.numpy(), x)
