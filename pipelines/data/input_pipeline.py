"""The tf.data input pipeline every stage reads through: prepared shards (or small arrays) to
cached or streamed, seeded-shuffled, batched, scaled, augmented, prefetched batches of model inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.config import TrainConfig
from pipelines.data.prepared import SCALED_DTYPES, PreparedSplit, model_inputs, named_columns, read_examples
from pipelines.data.source import Split, without_autotuning

if TYPE_CHECKING:
    import tensorflow as tf

# `data.cache: auto` keeps a split in memory (in its stored dtypes) when it takes at most this
# much there: digits and MNIST-1D train from memory; a photo folder or a large table streams,
# its memory flat as it grows (streaming stored examples costs a parse per epoch, little beside
# training).
MEMORY_CACHE_BYTES = 256 << 20
# A streamed split shuffles within a buffer of about this many bytes of examples (at least
# SHUFFLE_MIN_EXAMPLES), after its shard order is shuffled.
SHUFFLE_BUFFER_BYTES = 64 << 20
SHUFFLE_MIN_EXAMPLES = 1024
# What tf.data holds per example beside its bytes (two tensors and their buffers): it dominates
# for small examples, e.g. a row of 20 floats (80 bytes).
ELEMENT_OVERHEAD_BYTES = 512
PREFETCH_BATCHES = 2


def as_tf_dataset(
    split: PreparedSplit | Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    train: TrainConfig | None = None,
    cache: str = "auto",
    workers: int = 1,
) -> tf.data.Dataset:
    """Batches of `(x, y)` model inputs over one split, prefetched.

    `cache`: `memory` keeps the split's examples in memory after the first epoch, `none`
    streams the shards every epoch, `auto` caches splits up to MEMORY_CACHE_BYTES. A cached
    split shuffles over all its examples; a streamed one shuffles its shard order and then
    within a bounded buffer; both seeded. Augmentation (from `train`) applies to numeric
    sequences and images, and only when shuffling, i.e. on the training split.

    With several `workers` (tf.distribute's multi-worker training), each reads its own shard
    files of the training split when it has at least one per worker (`reads_own_files`); the
    dataset then repeats, and `fit` needs `steps_per_epoch`.
    """
    import tensorflow as tf

    by_file = shuffle and reads_own_files(split, workers)
    if isinstance(split, Split):
        examples = tf.data.Dataset.from_tensor_slices((split.x, split.y))
        cached, buffer = True, len(split)
    else:
        cached = is_cached(split, cache)
        examples = read_examples(
            split, shuffle_seed=seed if shuffle and not cached else None, known_length=not by_file
        )
        buffer = split.size if cached else shuffle_buffer_examples(split)
    if cached:
        examples = examples.cache()
    if shuffle:
        examples = examples.shuffle(max(1, buffer), seed=seed, reshuffle_each_iteration=True)
    if by_file:
        # Workers' shard files hold unequal shares; each loops over its own, and `fit` counts the
        # steps of an epoch (`steps_per_epoch`), so that every worker runs the same steps.
        examples = examples.repeat()
    batches = examples.batch(batch_size)
    if isinstance(split, PreparedSplit) and split.stored_dtype == "table":
        # Rows travel as two matrices (cheap to shuffle and batch); the model reads named columns.
        batches = batches.map(named_columns(split))
    inputs = batches.element_spec[0]
    if not isinstance(inputs, dict) and inputs.dtype.name in SCALED_DTYPES:  # other dtypes: as stored
        batches = batches.map(model_inputs)
    numeric = not isinstance(inputs, dict) and inputs.dtype.is_floating
    if shuffle and train and (train.augment_shift or train.augment_scale) and numeric:
        rank = len(batches.element_spec[0].shape)
        batches = batches.map(_augmenter(train.augment_shift, train.augment_scale, seed, rank))
    # A streamed split prefetches two batches (parsing runs in parallel upstream): an autotuned
    # buffer may grow to many batches, hundreds of MB of large images. A cached one is small.
    batches = batches.prefetch(tf.data.AUTOTUNE if cached else PREFETCH_BATCHES)
    if cached:
        # Nothing upstream of a cached split runs in parallel: the autotuning model would only
        # tune the prefetch depth, at a cost (`without_autotuning`).
        batches = without_autotuning(batches)
    if workers > 1:
        policy = tf.data.experimental.AutoShardPolicy
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = policy.FILE if by_file else policy.DATA
        batches = batches.with_options(options)
    return batches


def is_cached(split: PreparedSplit, cache: str) -> bool:
    """Whether `data.cache` keeps this split in memory after its first epoch."""
    in_memory = split.nbytes + split.size * ELEMENT_OVERHEAD_BYTES
    return cache == "memory" or (cache == "auto" and in_memory <= MEMORY_CACHE_BYTES)


def shuffle_buffer_examples(split: PreparedSplit) -> int:
    """Examples a streamed split shuffles within."""
    per_example = split.example_bytes + ELEMENT_OVERHEAD_BYTES
    return min(split.size, max(SHUFFLE_MIN_EXAMPLES, SHUFFLE_BUFFER_BYTES // per_example))


def reads_own_files(split: PreparedSplit | Split, workers: int) -> bool:
    """Whether each of `workers` training processes reads shard files of its own (tf.distribute's
    FILE auto-sharding): when the training split has a file for each. Otherwise every worker
    reads all and keeps its share of each batch (DATA)."""
    return isinstance(split, PreparedSplit) and workers > 1 and len(split.files) >= workers


def _augmenter(max_shift: int, max_scale: float, seed: int, ndim: int):
    """Random shift by up to `max_shift` and amplitude scaling by 1 ± `max_scale`, per example.

    Sequences `(batch, steps)` or `(batch, steps, features)` shift circularly along the steps;
    images `(batch, height, width, channels)` move by up to `max_shift` pixels along each axis,
    the uncovered border filled with zeros.
    """
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(seed)

    def offsets(batch: tf.Tensor) -> tf.Tensor:
        return generator.uniform([batch], -max_shift, max_shift + 1, dtype=tf.int32)

    def shift_sequences(x: tf.Tensor) -> tf.Tensor:
        steps = tf.shape(x)[1]
        positions = (tf.range(steps)[None, :] - offsets(tf.shape(x)[0])[:, None]) % steps
        return tf.gather(x, positions, batch_dims=1)

    def translate_images(x: tf.Tensor) -> tf.Tensor:
        batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        padded = tf.pad(x, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
        rows = tf.range(height)[None, :] + (max_shift + offsets(batch))[:, None]
        columns = tf.range(width)[None, :] + (max_shift + offsets(batch))[:, None]
        return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)

    shift = translate_images if ndim == 4 else shift_sequences

    def augment(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if max_shift:
            x = shift(x)
        scales = generator.uniform([tf.shape(x)[0]] + [1] * (ndim - 1), 1.0 - max_scale, 1.0 + max_scale)
        return x * scales, y

    return augment
