"""A folder of images as a source: one sub-folder per class, or `train/`, `test/` (and optionally
`validation/`) split folders that each hold one sub-folder per class, or images directly in the
folder (one unlabelled set, for a GAN to imitate). Images are decoded and resized in tf.data, in
parallel, and stored as uint8 pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import DataConfig
from pipelines.data.own_files import UnreadableFile, class_folder_files
from pipelines.data.source import Chunk, SourceData, first_line, route, without_autotuning

# The files `keras.utils.image_dataset_from_directory` reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CHUNK_IMAGES = 256


def read_images(config: DataConfig) -> SourceData:
    """Every image of the folder, labelled by its class folder, split by its split folder or seeded."""
    found = class_folder_files(config, IMAGE_EXTENSIONS, "image", unlabelled=True)
    files, labels, codes = found.files, found.labels, found.codes
    channels = 1 if config.grayscale else 3
    unreadable = found.unreadable(config, "image")

    def chunks() -> Iterator[Chunk]:
        import tensorflow as tf

        decode = tf.autograph.experimental.do_not_convert(
            lambda index, path: (index, _decoded(path, channels, config.image_size))
        )
        # An image that does not decode drops out of the stream (ignore_errors); the indices that
        # come through say which, and the file is then decoded alone for the reason.
        images = tf.data.Dataset.from_tensor_slices((np.arange(len(files)), [str(file) for file in files]))
        images = images.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
        # Decoding is CPU-bound on every core already: no autotuning model (`without_autotuning`).
        expected = 0
        for indices, x in without_autotuning(images.batch(CHUNK_IMAGES).prefetch(1)):
            indices = indices.numpy()
            for index in np.setdiff1d(np.arange(expected, indices[-1] + 1), indices):
                unreadable.meet(_undecodable(files[index], channels))
            expected = indices[-1] + 1
            yield from route(codes[indices], x.numpy(), labels[indices])
        for index in range(expected, len(files)):
            unreadable.meet(_undecodable(files[index], channels))
        unreadable.done(len(files))

    return found.source_data(config, "images", (*config.image_size, channels), "uint8", chunks, unreadable)


def _decoded(path, channels: int, size: list[int]):
    """One image file decoded, resized (bilinear, as Keras' loader) and rounded to uint8 pixels."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    resized = tf.image.resize(image, size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _undecodable(file: Path, channels: int) -> UnreadableFile:
    """Why an image that dropped out of the decoding stream does not decode."""
    import tensorflow as tf

    allowed = f"allowed: {', '.join(IMAGE_EXTENSIONS)} files that open as images"
    try:
        tf.io.decode_image(tf.io.read_file(str(file)), channels=channels, expand_animations=False)
    except tf.errors.OpError as problem:
        return UnreadableFile(file, f"cannot be decoded ({first_line(problem)})", allowed)
    return UnreadableFile(file, "could not be decoded while the folder was read", allowed)
