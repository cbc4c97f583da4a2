"""A folder of images as a source: one sub-folder per class, or `train/`, `test/` (and optionally
`validation/`) split folders that each hold one sub-folder per class. Images are decoded and
resized in tf.data, in parallel, and stored as uint8 pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError, DataConfig
from pipelines.data.own_files import SPLIT_NAMES, check_enough, check_trainable, existing
from pipelines.data.source import (
    SPLITS,
    TRAIN,
    VALIDATION_SPLIT_SEED,
    Chunk,
    SourceData,
    assign_splits,
    carve_validation,
    file_fingerprint,
    first_line,
    route,
)

# The files `keras.utils.image_dataset_from_directory` reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CHUNK_IMAGES = 256


def read_images(config: DataConfig) -> SourceData:
    """Every image of the folder, labelled by its class folder, split by its split folder or seeded."""
    folder = existing(config.path, folder=True)
    split_folders = {
        SPLIT_NAMES[child.name.lower()]: child
        for child in _subfolders(folder)
        if child.name.lower() in SPLIT_NAMES
    }
    if split_folders and not {"train", "test"} <= set(split_folders):
        present = ", ".join(f"{child.name}/" for child in split_folders.values())
        raise ConfigError(
            f"data.path: {str(folder)!r} has split folder(s) {present} but not both train/ and test/; "
            "allowed: train/ and test/ (validation/ optional), each with one sub-folder per class, "
            "or one sub-folder per class"
        )
    if split_folders:
        class_names = _class_folders(split_folders["train"])
        files, labels, codes = [], [], []
        for split in SPLITS:
            if split not in split_folders:
                continue
            for path, label in _labelled_files(split_folders[split], class_names, required=split == "train"):
                files.append(path)
                labels.append(label)
                codes.append(SPLITS.index(split))
        codes = np.array(codes, dtype=np.int8)
        check_trainable(int((codes == TRAIN).sum()), folder)
        if "validation" not in split_folders:
            codes = carve_validation(codes, config.validation_fraction, VALIDATION_SPLIT_SEED)
    else:
        class_names = _class_folders(folder)
        pairs = list(_labelled_files(folder, class_names, required=True))
        files, labels = [path for path, _ in pairs], [label for _, label in pairs]
        check_enough(len(files), folder)
        codes = assign_splits(
            len(files), config.validation_fraction, config.test_fraction, VALIDATION_SPLIT_SEED
        )
    # Stored in a seeded random order, not class by class: a split too big to cache is shuffled
    # within a bounded buffer as it streams, which cannot mix classes stored one after another.
    order = np.random.default_rng(VALIDATION_SPLIT_SEED).permutation(len(files))
    files = [files[index] for index in order]
    labels = np.array(labels, dtype=np.int32)[order]
    codes = codes[order]
    channels = 1 if config.grayscale else 3

    def chunks() -> Iterator[Chunk]:
        import tensorflow as tf

        images = tf.data.Dataset.from_tensor_slices([str(file) for file in files]).map(
            lambda path: _decoded(path, channels, config.image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        batches = iter(images.batch(CHUNK_IMAGES).prefetch(1))
        start = 0
        while start < len(files):
            try:
                x = next(batches).numpy()
            except tf.errors.InvalidArgumentError as error:
                raise _undecodable(files[start:], channels, error) from None
            rows = slice(start, start + len(x))
            yield from route(codes[rows], x, labels[rows])
            start += len(x)

    return SourceData(
        name=config.name,
        version=file_fingerprint(folder),
        source="images",
        task="classification",
        element_shape=(*config.image_size, channels),
        stored_dtype="uint8",
        target_shape=(),
        chunks=chunks,
        class_names=class_names,
        location=str(folder),
    )


def _decoded(path, channels: int, size: list[int]):
    """One image file decoded, resized (bilinear, as Keras' loader) and rounded to uint8 pixels."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    resized = tf.image.resize(image, size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _undecodable(candidates: list[Path], channels: int, error: Exception) -> ConfigError:
    """The error naming the first of `candidates` that does not decode (the one tf.data hit)."""
    import tensorflow as tf

    for file in candidates:
        try:
            tf.io.decode_image(tf.io.read_file(str(file)), channels=channels, expand_animations=False)
        except tf.errors.InvalidArgumentError as problem:
            return ConfigError(
                f"data.path: image {str(file)!r} cannot be decoded ({first_line(problem)}); "
                f"allowed: {', '.join(IMAGE_EXTENSIONS)} files that open as images"
            )
    return ConfigError(
        f"data.path: an image cannot be decoded ({first_line(error)}); "
        f"allowed: {', '.join(IMAGE_EXTENSIONS)} files"
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(child for child in folder.iterdir() if child.is_dir() and not child.name.startswith("."))


def _class_folders(folder: Path) -> list[str]:
    """The class names of a folder: its sub-folders, at least two."""
    classes = [child.name for child in _subfolders(folder)]
    if len(classes) < 2:
        raise ConfigError(
            f"data.path: {str(folder)!r} has {len(classes)} class sub-folder(s); "
            "allowed: one sub-folder of images per class, at least two"
        )
    return classes


def _labelled_files(folder: Path, class_names: list[str], required: bool) -> Iterator[tuple[Path, int]]:
    """(image file, class index) for every image under `folder`'s class folders, in sorted order.

    Every class folder must hold an image where `required` (the split that trains); a class
    folder that is not one of `class_names` is refused.
    """
    for child in _subfolders(folder):
        if child.name not in class_names:
            raise ConfigError(
                f"data.path: class folder {child.name!r} in {str(folder)!r} is not a class of the train "
                f"split; allowed: {', '.join(class_names)}"
            )
        images = sorted(
            file for file in child.rglob("*") if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS
        )
        if required and not images:
            raise ConfigError(
                f"data.path: class folder {child.name!r} in {str(folder)!r} holds no image; "
                f"allowed: at least one {', '.join(IMAGE_EXTENSIONS)} file per class folder"
            )
        label = class_names.index(child.name)
        for file in images:
            yield file, label
