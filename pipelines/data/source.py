"""What every source hands to the prepared format: its examples in chunks, each chunk routed to
a split, and what is known of them before they are read (task, classes, shapes, provenance).

Sources never hold a dataset whole: `SourceData.chunks` streams `(split, x, y)` arrays of a few
hundred to a few thousand examples in stored dtypes (uint8 pixels, UTF-8 strings, float32
numbers, int16 audio samples; int32 class labels or float32 targets). Splits that the data does
not carry are drawn here, per example, by `assign_splits`: seeded, stable across reruns, exact in
size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipelines.data.table import TableLayout

# Validation carved out of a train split uses this fixed seed, so that the split (and the
# dataset's digest) does not change with the model's seed; a test split drawn from the whole
# data uses the next one, so that the two draws are independent.
VALIDATION_SPLIT_SEED = 1234
TEST_SPLIT_SEED = VALIDATION_SPLIT_SEED + 1
SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2  # split codes of `assign_splits`
UNLABELLED = -1  # the split code of an example left out of every split (a row without a target)
StoredDtype = str  # "uint8" | "int16" | "float32" | "string" | "table"
# 16-bit PCM audio samples over this are in [-1, 1), as tf.audio.decode_wav reads them.
PCM_SCALE = 32768.0

Chunk = tuple[str, np.ndarray, np.ndarray]


class DataError(RuntimeError):
    """A dataset that cannot be loaded, said in one sentence."""


@dataclass
class Split:
    """One split as arrays in the form models read: inputs `x` and targets `y`.

    Only small reads take this form (examples for MLflow, probes, plots, tests); stages stream.
    """

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class SourceData:
    """A source, opened and checked but not yet read: its chunks are read once, by `chunks()`."""

    name: str
    version: str
    source: str  # "embedded", "tfds-catalog", or the user's "csv", "npz", "images"
    task: str  # "classification" or "regression"
    element_shape: tuple[int, ...]  # one example's input, no batch dimension
    stored_dtype: StoredDtype
    target_shape: tuple[int, ...]  # () for a class label or a single value
    chunks: Callable[[], Iterator[Chunk]]
    class_names: list[str] = field(default_factory=list)
    location: str | None = None  # the user's file or folder, absolute
    features: list[str] = field(default_factory=list)  # the CSV columns the inputs hold
    # Windows of a time series: x holds the past values (steps, 1), y the next `horizon` values.
    forecast: bool = False
    # Raw-valued inputs (CSV features) are standardised inside the model with the train split's
    # per-feature statistics; a regression target of the user's with the train split's mean/std.
    input_statistics: bool = False
    target_statistics: bool = False
    # Statistics the source knows itself (a forecast's series), used instead of the train split's.
    spec_statistics: dict = field(default_factory=dict)
    # Audio: the samples per second of the stored waveforms (None for other data).
    sample_rate: int | None = None
    # A table (stored dtype "table"): its columns, how each is read and why; chunks hold TableRows.
    table: TableLayout | None = None
    # What reading the source changed or left out, one sentence each (rows without a target).
    # Chunks may add to it as they are read: it is kept once every chunk has been.
    notes: list[str] = field(default_factory=list)
    # How the source was read, for the prepare run's params (a CSV's delimiter, encoding, decimal).
    reading: dict[str, str] = field(default_factory=dict)
    # Files of a folder left out because they cannot be read (data.on_unreadable: skip), each
    # {"file": path within the folder, "reason": why}; filled as the chunks are read.
    skipped: list[dict[str, str]] = field(default_factory=list)


def assign_splits(
    total: int,
    validation_fraction: float | None,
    test_fraction: float | None = None,
    seed: int = VALIDATION_SPLIT_SEED,
) -> np.ndarray:
    """A split code per example (TRAIN, VALIDATION, TEST) for `total` examples in reading order.

    Each example's position is hashed with a seed; the examples with the smallest hashes are
    held out, exactly `round(fraction * n)` of them (at least one, leaving at least one for each
    other split). The same position, fraction and seed give the same split on every run, without
    reading the data. `test_fraction` None draws no test split (the data has its own).
    """
    codes = np.full(total, TRAIN, dtype=np.int8)
    if test_fraction is not None:
        count = min(total - 2, max(1, round(test_fraction * total)))
        codes[_smallest(position_hash(np.arange(total, dtype=np.uint64), seed + 1), count)] = TEST
    if validation_fraction is not None:
        codes = carve_validation(codes, validation_fraction, seed)
    return codes


def carve_validation(codes: np.ndarray, fraction: float, seed: int = VALIDATION_SPLIT_SEED) -> np.ndarray:
    """Move `round(fraction * n)` of the n TRAIN codes (at least one, never all) to VALIDATION,
    chosen by the hash of their positions as in `assign_splits`."""
    train = np.flatnonzero(codes == TRAIN)
    count = min(len(train) - 1, max(1, round(fraction * len(train))))
    codes = codes.copy()
    codes[train[_smallest(position_hash(train.astype(np.uint64), seed), count)]] = VALIDATION
    return codes


def _smallest(hashes: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` smallest hashes (hashes of distinct positions never tie)."""
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.argpartition(hashes, count - 1)[:count]


def position_hash(positions: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64 of position + seed: a bijection on 64-bit integers, so no two positions tie."""
    with np.errstate(over="ignore"):
        z = positions + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def route(codes: np.ndarray, x: np.ndarray, y: np.ndarray) -> Iterator[Chunk]:
    """The chunk's examples, split by their codes, in reading order within each split; examples
    of any other code (a row without a target) go nowhere."""
    for code, split in enumerate(SPLITS):
        chosen = codes == code
        if chosen.all():
            yield split, x, y
        elif chosen.any():
            yield split, x[chosen], y[chosen]


def file_fingerprint(path: Path) -> str:
    """Short hash of a file's (or a folder's files') names, sizes and modification times.

    It changes when a file is added, removed, resized or rewritten, and costs a `stat` per file
    instead of a read: the key under which a prepared copy of the user's data is found again.
    """
    if not path.is_dir():
        stat = path.stat()
        return hashlib.sha256(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()).hexdigest()[:12]
    prefix = len(os.path.join(str(path), ""))
    lines = sorted(
        f"{full[prefix:]}|{stat.st_size}|{stat.st_mtime_ns}\n" for full, stat in regular_files(path)
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:12]


def regular_files(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    """`(path, stat)` of every regular file anywhere under `folder`, links followed, unsorted.

    Strings, not Paths: a folder of 50k photos is 50k of them, and a Path each costs more than
    reading the names.
    """
    for root, _, names in os.walk(folder):
        for name in names:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:  # a dangling link: not a file
                continue
            if S_ISREG(stat.st_mode):
                yield full, stat


def available_memory_bytes() -> int:
    """Memory the system can still hand out (Linux' MemAvailable), or physical memory elsewhere."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def without_autotuning(dataset):
    """`dataset` (a tf.data.Dataset) with tf.data's autotuning model off: its AUTOTUNE
    parallelism then stays at the core count (at most 16) and its AUTOTUNE prefetch buffers are
    sized by the legacy prefetch autotuner (grown while the consumer waits).

    For pipelines whose only parallel step is CPU-bound work on every core anyway (decoding
    files), or that run nothing in parallel (a split cached in memory), the model has nothing
    to gain and costs twice: its optimisation thread takes CPU from the work on a 2-core machine,
    and destroying an iterator waits for its current round, which py-spy showed as 1-4 s in
    `RootDataset::Iterator::~Iterator` after many a `fit` and after decoding 6,000 images.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (TensorFlow's run to pages)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
