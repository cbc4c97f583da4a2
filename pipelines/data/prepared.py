"""The prepared format: every split of a dataset as TFRecord shards in one content-addressed
folder, written once by `materialise` and read by every later stage through `read_examples`.

Why TFRecord: tf.data reads it natively with parallel, interleaved reads; tf.distribute shards it
by file across workers; each record holds a chunk of examples in their compact stored dtype
(uint8 pixels, int16 audio, UTF-8 strings, float32 numbers), so writing and reading cost one
record per chunk, not per example. A numeric record is the chunk's raw little-endian bytes,
targets first, then inputs (`tf.io.decode_raw` reads it; `dataset.json` holds the shapes), with no
protobuf around it: wrapping 1 MB in a `tf.train.Example` of serialized tensors took about five
times as long as hashing and writing it. A text record is such an Example of two string tensors.
`dataset.json` beside the shards holds the digest, schema, split sizes, class counts and the
train split's statistics, all computed in the same streaming pass that writes the shards. A
folder is written under a temporary name and renamed into place when whole: a crash or a full
disk leaves nothing half-written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.spec import DataSpec
from pipelines.data.source import PCM_SCALE, SPLITS, DataError, SourceData, Split
from pipelines.data.table import TableRows, TableStatistics, model_columns
from pipelines.data.table import schema as table_schema

if TYPE_CHECKING:
    import tensorflow as tf

FORMAT_VERSION = 4  # bump when the layout or the meaning of a field changes (3: fewer bins for few
# rows; 4: whole-number float targets are classes, "$1,234" and "15%" are numbers)
MANIFEST = "dataset.json"
INDEX = "index"  # <store>/index/<source key>: the digest a source was last prepared to
RECORD_BYTES = 1 << 20  # examples per record: about 1 MB of them
SHARD_BYTES = 64 << 20  # a new shard file after about 64 MB
PROGRESS_SECONDS = 10.0


@dataclass(frozen=True)
class PreparedSplit:
    """One split on disk: its shard files, size, bytes and the schema of its examples."""

    name: str
    files: tuple[str, ...]
    size: int
    nbytes: int
    element_shape: tuple[int, ...]
    stored_dtype: str
    target_shape: tuple[int, ...]
    target_dtype: str
    # Consecutive examples with different labels (classification): few mean a split stored class
    # by class, which a bounded shuffle buffer cannot mix.
    label_changes: int | None = None
    # A table: the model input of each column in storage order (numbers, then categories);
    # `element_shape` is then (numeric columns, categorical columns).
    input_keys: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.size

    def stored_by_class(self, counts: dict[str, int]) -> bool:
        """Whether this split's examples are stored in runs of one class: fewer than half the label
        changes a random order would have (given its class `counts`)."""
        if self.label_changes is None or self.size < 2 or not counts:
            return False
        shares = np.array(list(counts.values()), dtype=np.float64) / self.size
        expected = (self.size - 1) * (1.0 - float((shares**2).sum()))
        return self.label_changes < 0.5 * expected

    @property
    def example_bytes(self) -> int:
        """Stored bytes of one example (on average for text)."""
        return max(1, self.nbytes // max(1, self.size))


@dataclass
class PreparedDataset:
    """A dataset in the prepared format, with what a model builder and each stage need to know."""

    name: str
    version: str
    source: str
    digest: str
    spec: DataSpec
    folder: Path
    splits: dict[str, PreparedSplit]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per split: class -> examples
    class_names: list[str] = field(default_factory=list)
    location: str | None = None
    features: list[str] = field(default_factory=list)
    forecast: bool = False
    # Mean of each target column over the train split (regression): the baseline to beat.
    train_target_means: list[float] | None = None
    # A table: one entry per column of the file, read or not (`pipelines.data.table.schema`).
    table_schema: list[dict] = field(default_factory=list)
    # What reading the source changed or left out, one sentence each.
    notes: list[str] = field(default_factory=list)
    # How the source was read (a CSV's delimiter, encoding and decimal mark).
    reading: dict[str, str] = field(default_factory=dict)
    # Files of the user's folder left out as unreadable: {"file", "reason"} each.
    skipped: list[dict[str, str]] = field(default_factory=list)
    # How this process got it: prepared now (and how long that took) or found already prepared.
    reused: bool = True
    seconds: float = 0.0

    def sizes(self) -> dict[str, int]:
        """Examples per split."""
        return {name: split.size for name, split in self.splits.items()}

    @property
    def nbytes(self) -> int:
        """Bytes of every shard together."""
        return sum(split.nbytes for split in self.splits.values())

    def class_counts(self, split: str) -> dict[str, int]:
        """Examples per class in one split (classification only; classes with none left out)."""
        return dict(self.counts.get(split, {}))

    def class_name(self, label: int) -> str:
        """Readable name of a class index."""
        return self.class_names[label] if label < len(self.class_names) else str(label)

    def arrays(self, split: str, limit: int | None = None) -> Split:
        """The first `limit` examples of a split (all when None) as model-ready arrays.

        For small reads only (input examples, parity batches, probes, plots, tests): stages
        stream the shards with `pipelines.data.as_tf_dataset` instead.
        """
        prepared = self.splits[split]
        if prepared.stored_dtype == "table":
            return _table_arrays(prepared, limit)
        if prepared.stored_dtype != "string":
            # Raw records decode in NumPy: no tf.data function to trace for a handful of examples.
            x, y = _raw_arrays(prepared, limit)
            scale = SCALED_DTYPES.get(prepared.stored_dtype)
            return Split(x.astype(np.float32) / np.float32(scale) if scale else x, y)
        examples = read_examples(prepared)
        if limit is not None:
            examples = examples.take(limit)
        xs, ys = [], []
        for x, y in examples.batch(4096):
            xs.append(x.numpy())
            ys.append(y.numpy())
        if not xs:
            return Split(
                np.zeros((0, *prepared.element_shape), dtype=object),
                np.zeros((0, *prepared.target_shape), dtype=prepared.target_dtype),
            )
        # TFDS and TensorFlow hand text over as UTF-8 bytes; models and MLflow take str.
        x = np.concatenate(xs)
        x = np.array([text.decode("utf-8") for text in x.ravel()], dtype=object).reshape(x.shape)
        return Split(x, np.concatenate(ys))


# Stored dtypes that models read scaled to float32: uint8 pixels to [0, 1], int16 audio samples
# (16-bit PCM, as WAV files hold them) to [-1, 1).
SCALED_DTYPES = {"uint8": 255.0, "int16": PCM_SCALE}


def model_inputs(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Stored dtypes to what models read: uint8 pixels to float32 in [0, 1], int16 audio samples to
    [-1, 1); text stays a string, float32 as it is."""
    import tensorflow as tf

    if x.dtype.name in SCALED_DTYPES:
        x = tf.cast(x, tf.float32) / SCALED_DTYPES[x.dtype.name]
    return x, y


def read_examples(
    split: PreparedSplit, shuffle_seed: int | None = None, known_length: bool = True
) -> tf.data.Dataset:
    """A split's examples `(x, y)` in stored dtypes, read from its shards in parallel.

    With `shuffle_seed`, the shard order is shuffled (seeded, anew each epoch); records of
    several shards are interleaved either way, deterministically. `known_length` tells tf.data
    the split's size; not when tf.distribute will hand each worker only some of the files.
    """
    import tensorflow as tf

    parser = {"string": _text_parser, "table": _table_parser}.get(split.stored_dtype, _raw_parser)
    parse = tf.autograph.experimental.do_not_convert(parser(split))
    files = tf.data.Dataset.from_tensor_slices(list(split.files))
    if shuffle_seed is not None and len(split.files) > 1:
        files = files.shuffle(len(split.files), seed=shuffle_seed, reshuffle_each_iteration=True)
    if len(split.files) > 1:
        records = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(4, len(split.files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        records = tf.data.TFRecordDataset(files)
    examples = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    if not known_length:
        return examples
    # Known length: Keras counts the steps of an epoch instead of running into its end.
    return examples.apply(tf.data.experimental.assert_cardinality(split.size))


def _record_layout(split: PreparedSplit) -> tuple[np.dtype, np.dtype, int, int]:
    """A numeric split's little-endian input and target dtypes and bytes per example of each."""
    x_dtype = np.dtype(split.stored_dtype).newbyteorder("<")
    y_dtype = np.dtype(split.target_dtype).newbyteorder("<")
    x_bytes = x_dtype.itemsize * math.prod(split.element_shape)
    y_bytes = y_dtype.itemsize * math.prod(split.target_shape)
    return x_dtype, y_dtype, x_bytes, y_bytes


def _raw_parser(split: PreparedSplit):
    """Record -> `(x, y)` of a numeric split: `n` examples' targets, then their inputs, raw."""
    import tensorflow as tf

    _, _, x_bytes, y_bytes = _record_layout(split)
    x_dtype, y_dtype = tf.as_dtype(split.stored_dtype), tf.as_dtype(split.target_dtype)

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        count = tf.strings.length(record) // (x_bytes + y_bytes)
        y = tf.io.decode_raw(tf.strings.substr(record, 0, count * y_bytes), y_dtype)
        x = tf.io.decode_raw(tf.strings.substr(record, count * y_bytes, count * x_bytes), x_dtype)
        return tf.reshape(x, [-1, *split.element_shape]), tf.reshape(y, [-1, *split.target_shape])

    return parse


def _text_parser(split: PreparedSplit):
    """Record -> `(x, y)` of a text split: a `tf.train.Example` of two serialized tensors."""
    import tensorflow as tf

    y_dtype = tf.as_dtype(split.target_dtype)
    schema = {"x": tf.io.FixedLenFeature([], tf.string), "y": tf.io.FixedLenFeature([], tf.string)}

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parts = tf.io.parse_single_example(record, schema)
        x = tf.ensure_shape(tf.io.parse_tensor(parts["x"], tf.string), [None, *split.element_shape])
        y = tf.ensure_shape(tf.io.parse_tensor(parts["y"], y_dtype), [None, *split.target_shape])
        return x, y

    return parse


def _table_parser(split: PreparedSplit):
    """Record -> `((numbers, categories), y)` of a table split: a `tf.train.Example` of the numbers
    and the targets as serialized tensors and the category texts as a list, row after row. The
    columns become named inputs after batching (`named_columns`)."""
    import tensorflow as tf

    y_dtype = tf.as_dtype(split.target_dtype)
    numeric, categorical = split.element_shape
    schema = {
        "numbers": tf.io.FixedLenFeature([], tf.string),
        "categories": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
        "y": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(record: tf.Tensor):
        parts = tf.io.parse_single_example(record, schema)
        numbers = tf.ensure_shape(tf.io.parse_tensor(parts["numbers"], tf.float32), [None, numeric])
        categories = tf.reshape(parts["categories"], [tf.shape(numbers)[0], categorical])
        if not numeric:
            # TensorFlow crashes (a segmentation fault) batching the empty rows that unbatching a
            # [rows, 0] tensor gives, so a table of categories alone carries one unread column.
            numbers = tf.zeros([tf.shape(numbers)[0], 1], tf.float32)
        y = tf.ensure_shape(tf.io.parse_tensor(parts["y"], y_dtype), [None, *split.target_shape])
        return (numbers, categories), y

    return parse


def named_columns(split: PreparedSplit):
    """A function of a batch `((numbers, categories), y)` of a table split to `(inputs, y)`, the
    inputs one named tensor per column, as the model reads them."""
    numeric = split.element_shape[0]
    keys = split.input_keys

    def named(x, y):
        numbers, categories = x
        inputs = {key: numbers[:, index] for index, key in enumerate(keys[:numeric])}
        inputs |= {key: categories[:, index] for index, key in enumerate(keys[numeric:])}
        return inputs, y

    return named


def _table_arrays(split: PreparedSplit, limit: int | None) -> Split:
    """The first `limit` rows of a table split: `x` maps each model input to its column (float32
    numbers with NaN where empty, category strings)."""
    examples = read_examples(split)
    if limit is not None:
        examples = examples.take(limit)
    numeric = split.element_shape[0]
    columns: dict[str, list[np.ndarray]] = {key: [] for key in split.input_keys}
    ys = []
    for inputs, y in examples.batch(4096).map(named_columns(split)):
        for key, values in inputs.items():
            columns[key].append(values.numpy())
        ys.append(y.numpy())
    x = {}
    for index, key in enumerate(split.input_keys):
        if index < numeric:
            x[key] = np.concatenate(columns[key]) if ys else np.zeros(0, np.float32)
        else:
            texts = np.concatenate(columns[key]) if ys else []
            x[key] = np.array([text.decode("utf-8") for text in texts], dtype=object)
    y = np.concatenate(ys) if ys else np.zeros((0, *split.target_shape), dtype=split.target_dtype)
    return Split(x, y)


def _raw_arrays(split: PreparedSplit, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` examples of a numeric split, in stored dtypes, read record by record."""
    import tensorflow as tf

    x_dtype, y_dtype, x_bytes, y_bytes = _record_layout(split)
    wanted = split.size if limit is None else min(limit, split.size)
    xs, ys, count = [], [], 0
    for file in split.files:
        for record in tf.data.TFRecordDataset(file):
            if count >= wanted:
                break
            data = record.numpy()
            total = len(data) // (x_bytes + y_bytes)
            n = min(total, wanted - count)
            ys.append(np.frombuffer(data, y_dtype, count=n * y_bytes // y_dtype.itemsize))
            xs.append(
                np.frombuffer(data, x_dtype, count=n * x_bytes // x_dtype.itemsize, offset=total * y_bytes)
            )
            count += n
        if count >= wanted:
            break
    x = np.concatenate(xs) if xs else np.zeros(0, x_dtype)
    y = np.concatenate(ys) if ys else np.zeros(0, y_dtype)
    native = (np.dtype(split.stored_dtype), np.dtype(split.target_dtype))
    return (
        x.astype(native[0], copy=False).reshape(-1, *split.element_shape),
        y.astype(native[1], copy=False).reshape(-1, *split.target_shape),
    )


def open_prepared(store: Path, digest: str) -> PreparedDataset | None:
    """The prepared dataset of this digest in `store`, or None when it is not (or no longer) there."""
    folder = store / digest
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format_version") != FORMAT_VERSION:
        return None
    splits = {
        name: PreparedSplit(
            name=name,
            files=tuple(str(folder / file) for file in entry["files"]),
            size=entry["size"],
            nbytes=entry["nbytes"],
            element_shape=tuple(entry["element_shape"]),
            stored_dtype=entry["stored_dtype"],
            target_shape=tuple(entry["target_shape"]),
            target_dtype=entry["target_dtype"],
            label_changes=entry.get("label_changes"),
            input_keys=tuple(entry.get("input_keys", ())),
        )
        for name, entry in manifest["splits"].items()
    }
    if not all(Path(file).is_file() for split in splits.values() for file in split.files):
        return None
    return PreparedDataset(
        name=manifest["name"],
        version=manifest["version"],
        source=manifest["source"],
        digest=manifest["digest"],
        spec=DataSpec.from_dict(manifest["spec"]),
        folder=folder,
        splits=splits,
        counts=manifest["class_counts"],
        class_names=manifest["class_names"],
        location=manifest["location"],
        features=manifest["features"],
        forecast=manifest["forecast"],
        train_target_means=manifest["train_target_means"],
        table_schema=manifest.get("table_schema", []),
        notes=manifest.get("notes", []),
        reading=manifest.get("reading", {}),
        skipped=manifest.get("skipped", []),
    )


def find_prepared(store: Path, source_key: str) -> PreparedDataset | None:
    """The dataset a source with this key was prepared to, while its shards are still there."""
    try:
        digest = (store / INDEX / source_key).read_text().strip()
    except OSError:
        return None
    return open_prepared(store, digest)


def remember(store: Path, source_key: str, digest: str) -> None:
    """Record that the source with this key prepares to `digest` (atomically)."""
    index = store / INDEX
    index.mkdir(parents=True, exist_ok=True)
    staging = index / f".{source_key}.{os.getpid()}"
    staging.write_text(digest)
    os.replace(staging, index / source_key)


def materialise(source: SourceData, store: Path, max_examples: int | None = None) -> PreparedDataset:
    """Read `source` once, writing every split as shards into `<store>/<digest>/`.

    The digest, class counts and train statistics come out of the same pass. A dataset whose
    digest is already in the store is not written twice. `max_examples` caps every split.
    """
    started = time.perf_counter()
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".preparing-", dir=store))
    progress = _Progress(source.name)
    try:
        writers: dict[str, _SplitWriter] = {}
        for split, x, y in source.chunks():
            writer = writers.get(split)
            if writer is None:
                writer = writers[split] = _SplitWriter(staging, split, source, max_examples)
            writer.add(x, y)
            progress.update(writers)
        for writer in writers.values():
            writer.close()
        missing = [split for split in SPLITS if split not in writers or not writers[split].size]
        if missing:
            skipped = f" once {len(source.skipped)} unreadable file(s) were skipped" if source.skipped else ""
            raise DataError(
                f"dataset {source.name!r} has no {missing[0]} example{skipped}; every one of "
                f"{', '.join(SPLITS)} needs at least one"
            )
        digest = _digest(source, writers)
        manifest = _manifest(source, writers, digest)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        final = store / digest
        if open_prepared(store, digest) is None:
            shutil.rmtree(final, ignore_errors=True)  # an incomplete folder of an older crash
            try:
                staging.rename(final)
            except OSError as error:  # another process renamed the same digest into place first
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DataError(
                f"no space left on the device of {str(store)!r} while preparing {source.name!r}; "
                "allowed: free some space there, or set DEEPARCH_DATASET_STORE to a folder with room"
            ) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dataset = open_prepared(store, digest)
    if dataset is None:
        raise DataError(f"prepared dataset {digest} vanished from {str(store)!r} while it was written")
    dataset.reused = False
    dataset.seconds = time.perf_counter() - started
    progress.done(dataset)
    return dataset


class _Moments:
    """Count, mean and sum of squared deviations per column, merged chunk by chunk (Chan et al.)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, values: np.ndarray) -> None:
        values = values.reshape(len(values), -1).astype(np.float64)
        count = len(values)
        if not count:
            return
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / total
        self.count = total

    def variance(self) -> np.ndarray:
        return self.m2 / max(1, self.count)


class _SplitWriter:
    """Writes one split's chunks as records into rotating shard files, hashing and counting them."""

    def __init__(self, folder: Path, split: str, source: SourceData, max_examples: int | None) -> None:
        import tensorflow as tf

        self._tf = tf
        self.folder = folder
        self.split = split
        self.source = source
        self.limit = max_examples
        self.size = 0
        self.nbytes = 0
        self.files: list[str] = []
        # Inputs and targets hashed apart, so that the digest does not depend on chunk boundaries.
        self.input_sha = hashlib.sha256()
        self.target_sha = hashlib.sha256()
        self.category_sha = hashlib.sha256()
        self.labels: dict[int, int] = {}
        self.label_changes = 0
        self._last_label: int | None = None
        self.inputs = _Moments()
        self.targets = _Moments()
        self.table = TableStatistics(*source.element_shape) if source.stored_dtype == "table" else None
        self._shard = None
        self._shard_bytes = 0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.limit is not None:
            room = self.limit - self.size
            if room <= 0:
                return
            x, y = x[:room], y[:room]
        if not len(y):
            return
        if self.source.stored_dtype == "string":
            x = np.array([_utf8(text) for text in x.ravel()], dtype=object).reshape(x.shape)
            self.input_sha.update(b"".join(text + b"\0" for text in x.ravel()))
        elif self.table is not None:
            self.table.add(x)
            encoded = [text.encode("utf-8") for text in x.categories.ravel()]
            x = TableRows(
                np.ascontiguousarray(x.numbers, dtype=np.float32),
                np.array(encoded, dtype=object).reshape(x.categories.shape),
            )
            # Numbers and categories hashed apart, as inputs and targets are; each text ends in \0.
            self.input_sha.update(_little_endian(x.numbers))
            if encoded:
                self.category_sha.update(b"\0".join(encoded) + b"\0")
        else:
            x = np.ascontiguousarray(x, dtype=self.source.stored_dtype)
            self.input_sha.update(x)  # the array's own buffer: no copy
        y = np.ascontiguousarray(y, dtype=np.int32 if self.source.task == "classification" else np.float32)
        self.target_sha.update(y)
        if self.source.task == "classification":
            previous = y[0] if self._last_label is None else self._last_label
            self.label_changes += int((y[0] != previous) + np.count_nonzero(y[1:] != y[:-1]))
            self._last_label = int(y[-1])
            labels, counts = np.unique(y, return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                self.labels[label] = self.labels.get(label, 0) + count
        if self.split == "train":
            if self.source.input_statistics:
                self.inputs.add(x.reshape(len(x), -1, x.shape[-1]).reshape(-1, x.shape[-1]))
            if self.source.task == "regression":
                self.targets.add(y)
        example_bytes = max(1, _stored_bytes(x) // len(y))
        per_record = max(1, RECORD_BYTES // example_bytes)
        for start in range(0, len(y), per_record):
            self._write(x[start : start + per_record], y[start : start + per_record])
        self.size += len(y)

    def _write(self, x: np.ndarray, y: np.ndarray) -> None:
        tf = self._tf
        if self._shard is None or self._shard_bytes >= SHARD_BYTES:
            self._close_shard()
            name = f"{self.split}-{len(self.files):05d}.tfrecord"
            self.files.append(name)
            self._shard = tf.io.TFRecordWriter(str(self.folder / name))
            self._shard_bytes = 0
        if self.table is not None:
            # The category texts as a list of bytes: a tensor proto of strings costs a Python call each.
            categories = tf.train.Feature(bytes_list=tf.train.BytesList(value=x.categories.ravel().tolist()))
            record = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "numbers": _bytes_feature(tf.make_tensor_proto(x.numbers).SerializeToString()),
                        "categories": categories,
                        "y": _bytes_feature(tf.make_tensor_proto(y).SerializeToString()),
                    }
                )
            ).SerializeToString()
        elif self.source.stored_dtype == "string":
            record = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "x": _bytes_feature(tf.make_tensor_proto(x).SerializeToString()),
                        "y": _bytes_feature(tf.make_tensor_proto(y).SerializeToString()),
                    }
                )
            ).SerializeToString()
        else:
            # One copy of the chunk's buffers into the record (`+` of two `tobytes` made three).
            record = b"".join((_little_endian(y), _little_endian(x)))
        self._shard.write(record)
        self._shard_bytes += len(record)
        self.nbytes += len(record)

    def _close_shard(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None

    def close(self) -> None:
        self._close_shard()


def _stored_bytes(x) -> int:
    """Bytes of a chunk's inputs as stored: the array's, or the strings' (and a table's numbers)."""
    if isinstance(x, TableRows):
        return x.numbers.nbytes + sum(map(len, x.categories.ravel()))
    return x.nbytes if x.dtype != object else sum(map(len, x.ravel()))


def _little_endian(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))


def _bytes_feature(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _utf8(text) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def _digest(source: SourceData, writers: dict[str, _SplitWriter]) -> str:
    """Content hash of every split's examples and schema: equal digests mean equal data."""
    sha = hashlib.sha256(f"deeparch-prepared-{FORMAT_VERSION}".encode())
    schema = [source.element_shape, source.stored_dtype, source.target_shape, source.task, source.class_names]
    if source.reading:  # the same rows read another way keep their own manifest (dialect, notes)
        schema.append(source.reading)
    if source.table is not None:  # what each column holds, not why (inferred from how many rows)
        schema.append([(column.name, column.kind, column.key) for column in source.table.read])
    sha.update(json.dumps(schema).encode())
    for split in sorted(writers):
        sha.update(f"{split}:{writers[split].size}:".encode())
        sha.update(writers[split].input_sha.digest() + writers[split].target_sha.digest())
        if source.table is not None:
            sha.update(writers[split].category_sha.digest())
    return sha.hexdigest()[:16]


def _spec(source: SourceData, writers: dict[str, _SplitWriter]) -> DataSpec:
    """The builders' view of the data, with the train split's statistics where the source asks."""
    statistics: dict = {}
    train = writers["train"]
    if source.input_statistics and train.inputs.mean is not None:
        # A constant column keeps its values: dividing by a zero spread would blow up new ones.
        statistics["input_mean"] = tuple(float(v) for v in train.inputs.mean)
        statistics["input_variance"] = tuple(float(v) if v > 0 else 1.0 for v in train.inputs.variance())
    if source.target_statistics and source.task == "regression" and train.targets.mean is not None:
        means, variances = train.targets.mean, train.targets.variance()
        mean = float(means.mean())
        scale = math.sqrt(float((variances + (means - mean) ** 2).mean()))
        statistics["target_mean"] = mean
        statistics["target_scale"] = scale if scale > 0 else 1.0
    statistics.update(source.spec_statistics)
    classification = source.task == "classification"
    columns = model_columns(source.table, train.table) if source.table is not None else ()
    return DataSpec(
        input_shape=(len(columns),) if columns else tuple(source.element_shape),
        input_dtype=source.stored_dtype if source.stored_dtype in ("string", "table") else "float32",
        columns=columns,
        sample_rate=source.sample_rate,
        task=source.task,
        num_classes=len(source.class_names) if classification else None,
        num_outputs=1 if classification else int(np.prod(source.target_shape)) or 1,
        **statistics,
    )


def _manifest(source: SourceData, writers: dict[str, _SplitWriter], digest: str) -> dict:
    target_dtype = "int32" if source.task == "classification" else "float32"
    data_spec = _spec(source, writers)
    spec = asdict(data_spec)
    train_targets = writers["train"].targets
    input_keys = [column.key for column in data_spec.columns]
    return {
        "format_version": FORMAT_VERSION,
        "digest": digest,
        "name": source.name,
        "version": source.version,
        "source": source.source,
        "location": source.location,
        "features": source.features,
        "forecast": source.forecast,
        "class_names": source.class_names,
        "spec": spec,
        "train_target_means": train_targets.mean.tolist() if train_targets.mean is not None else None,
        "table_schema": _table_schema(source, writers, data_spec),
        "notes": source.notes,
        "reading": source.reading,
        "skipped": source.skipped,
        "class_counts": {
            split: {_class_name(source, label): count for label, count in sorted(writer.labels.items())}
            for split, writer in writers.items()
            if source.task == "classification"
        },
        "splits": {
            split: {
                "files": writer.files,
                "size": writer.size,
                "nbytes": writer.nbytes,
                "element_shape": list(source.element_shape),
                "stored_dtype": source.stored_dtype,
                "target_shape": list(source.target_shape),
                "target_dtype": target_dtype,
                "label_changes": writer.label_changes if source.task == "classification" else None,
                "input_keys": input_keys,
            }
            for split, writer in writers.items()
        },
    }


def _table_schema(source: SourceData, writers: dict[str, _SplitWriter], spec: DataSpec) -> list[dict]:
    """A table's schema, counted over every split (what the model learnt: the train split's)."""
    if source.table is None:
        return []
    totals = TableStatistics(*source.element_shape)
    for writer in writers.values():
        totals.merge(writer.table)
    return table_schema(source.table, totals, spec.columns)


def _class_name(source: SourceData, label: int) -> str:
    return source.class_names[label] if label < len(source.class_names) else str(label)


class _Progress:
    """A line every PROGRESS_SECONDS while a large dataset is written, and one when it is done."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.perf_counter()
        self.last = self.started
        self.reported = False

    def update(self, writers: dict[str, _SplitWriter]) -> None:
        now = time.perf_counter()
        if now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        self.reported = True
        written = ", ".join(f"{split} {writer.size:,}" for split, writer in writers.items())
        megabytes = sum(writer.nbytes for writer in writers.values()) / 1e6
        print(
            f"preparing {self.name}: {written} examples written ({megabytes:,.0f} MB, "
            f"{now - self.started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    def done(self, dataset: PreparedDataset) -> None:
        if self.reported:
            print(
                f"prepared {self.name}: {sum(dataset.sizes().values()):,} examples, "
                f"{dataset.nbytes / 1e6:,.0f} MB in {dataset.folder} ({dataset.seconds:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
