"""A folder of images as a source: one sub-folder per class, or `train/`, `test/` (and optionally
`validation/`) split folders that each hold one sub-folder per class. Images are decoded and
resized in tf.data, in parallel, and stored as uint8 pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipelines.config import ConfigError, DataConfig
from pipelines.data.own_files import class_folder_files
from pipelines.data.source import Chunk, SourceData, first_line, route, without_autotuning

# The files `keras.utils.image_dataset_from_directory` reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CHUNK_IMAGES = 256


def read_images(config: DataConfig) -> SourceData:
    """Every image of the folder, labelled by its class folder, split by its split folder or seeded."""
    found = class_folder_files(config, IMAGE_EXTENSIONS, "image")
    files, labels, codes = found.files, found.labels, found.codes
    channels = 1 if config.grayscale else 3

    def chunks() -> Iterator[Chunk]:
        import tensorflow as tf

        decode = tf.autograph.experimental.do_not_convert(
            lambda path: _decoded(path, channels, config.image_size)
        )
        images = tf.data.Dataset.from_tensor_slices([str(file) for file in files]).map(
            decode,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        # Decoding is CPU-bound on every core already: no autotuning model (`without_autotuning`).
        batches = iter(without_autotuning(images.batch(CHUNK_IMAGES).prefetch(1)))
        start = 0
        while start < len(files):
            try:
                x = next(batches).numpy()
            except tf.errors.InvalidArgumentError as error:
                raise _undecodable(files[start:], channels, error) from None
            rows = slice(start, start + len(x))
            yield from route(codes[rows], x, labels[rows])
            start += len(x)

    return found.source_data(config, "images", (*config.image_size, channels), "uint8", chunks)


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
