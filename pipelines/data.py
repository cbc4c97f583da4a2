"""The one place that knows where data comes from: TFDS (embedded builders or the catalog), or
the user's own files through `pipelines.sources` (`data.source`: csv, npz, images).

`load_dataset` returns every split as NumPy arrays plus what a model builder needs to know
(`DataSpec`); `as_tf_dataset` turns a split into a cached, shuffled, batched, prefetched
`tf.data.Dataset`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.spec import DataSpec
from pipelines.config import EMBEDDED_DATASETS, DataConfig, TrainConfig

if TYPE_CHECKING:
    import tensorflow as tf

# Validation carved out of a train split uses this fixed seed, so that the split (and the
# dataset's digest) does not change with the model's seed.
VALIDATION_SPLIT_SEED = 1234
_EMBEDDED_MODULES = {name: f"pipelines.datasets.{name}" for name in EMBEDDED_DATASETS}
_DOWNLOAD_HOST = "storage.googleapis.com"


class DataError(RuntimeError):
    """A dataset that cannot be loaded, said in one sentence."""


@dataclass
class Split:
    """One split as arrays: inputs `x` and targets `y`."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class LoadedDataset:
    """Every split of a dataset, its spec and where it came from."""

    name: str
    version: str
    source: str  # "embedded", "tfds-catalog", or the user's "csv", "npz", "images"
    spec: DataSpec
    splits: dict[str, Split]
    class_names: list[str] = field(default_factory=list)
    location: str | None = None  # the user's file or folder, absolute
    features: list[str] = field(default_factory=list)  # the CSV columns the inputs hold
    # Windows of a time series: x holds the past values (steps, 1), y the next `horizon` values.
    forecast: bool = False

    @property
    def digest(self) -> str:
        """Content hash of every split: equal digests mean equal data."""
        sha = hashlib.sha256()
        for name in sorted(self.splits):
            split = self.splits[name]
            for array in (split.x, split.y):
                sha.update(name.encode())
                sha.update(str(array.shape).encode())
                if array.dtype == object:  # text: hash the characters, not the object pointers
                    sha.update("\0".join(array.tolist()).encode())
                else:
                    sha.update(np.ascontiguousarray(array).tobytes())
        return sha.hexdigest()[:16]

    def sizes(self) -> dict[str, int]:
        """Examples per split."""
        return {name: len(split) for name, split in self.splits.items()}

    def class_counts(self, split: str) -> dict[str, int]:
        """Examples per class in one split (classification only)."""
        labels, counts = np.unique(self.splits[split].y, return_counts=True)
        return {self.class_name(int(label)): int(count) for label, count in zip(labels, counts, strict=True)}

    def class_name(self, label: int) -> str:
        """Readable name of a class index."""
        return self.class_names[label] if label < len(self.class_names) else str(label)


def load_dataset(config: DataConfig) -> LoadedDataset:
    """Load train/validation/test of the configured dataset as arrays (offline for embedded ones)."""
    if config.source != "tfds":
        from pipelines.sources import load_own_dataset

        return load_own_dataset(config)
    import tensorflow_datasets as tfds

    embedded = config.name in _EMBEDDED_MODULES
    if embedded:
        importlib.import_module(_EMBEDDED_MODULES[config.name])  # registers the builder
    else:
        _ensure_downloadable(config)
    builder_kwargs = _builder_kwargs(config)
    try:
        with _preparation_lock(config):
            train, info = tfds.load(
                config.name,
                split="train",
                data_dir=config.data_dir,
                as_supervised=True,
                with_info=True,
                download=config.download or embedded,
                builder_kwargs=builder_kwargs,
            )
        others = [name for name in ("validation", "test") if name in info.splits] or ["test"]
        raw = {"train": _as_arrays(train)}
        for name in others:
            raw[name] = _as_arrays(
                tfds.load(
                    config.name,
                    split=name,
                    data_dir=config.data_dir,
                    as_supervised=True,
                    download=False,
                    builder_kwargs=builder_kwargs,
                )
            )
    except (AssertionError, OSError, ValueError) as error:
        raise DataError(
            f"dataset {config.name!r} could not be loaded from data_dir "
            f"{config.data_dir or '(TFDS default)'} ({_first_line(error)}); embedded datasets "
            f"that need no network: {', '.join(EMBEDDED_DATASETS)}"
        ) from None
    splits = capped(_train_validation_test(raw, config.validation_fraction), config.max_examples)
    splits = {name: _to_model_inputs(split) for name, split in splits.items()}
    label_feature = info.features[info.supervised_keys[1]]
    num_classes = getattr(label_feature, "num_classes", None)
    class_names = list(getattr(label_feature, "names", []) or [])
    spec = DataSpec(
        input_shape=tuple(int(d) for d in splits["train"].x.shape[1:]),
        input_dtype="string" if splits["train"].x.dtype == object else "float32",
        task="classification" if num_classes else "regression",
        num_classes=num_classes,
        num_outputs=1 if num_classes else int(np.prod(splits["train"].y.shape[1:]) or 1),
    )
    return LoadedDataset(
        name=config.name,
        version=str(info.version),
        source="embedded" if embedded else "tfds-catalog",
        spec=spec,
        splits=splits,
        class_names=class_names,
    )


def as_tf_dataset(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    train: TrainConfig | None = None,
) -> tf.data.Dataset:
    """A tf.data pipeline over one split: cache, seeded shuffle, batch, augment, prefetch.

    Augmentation (from `train`) applies to numeric sequences and images, and only when
    shuffling, i.e. on the training split.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((split.x, split.y)).cache()
    if shuffle:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if shuffle and train and (train.augment_shift or train.augment_scale) and split.x.dtype.kind == "f":
        dataset = dataset.map(_augmenter(train.augment_shift, train.augment_scale, seed, split.x.ndim))
    return dataset.prefetch(tf.data.AUTOTUNE)


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


@contextlib.contextmanager
def _preparation_lock(config: DataConfig) -> Iterator[None]:
    """One process at a time prepares a dataset: two would race to rename TFDS' folder into place."""
    key = hashlib.sha256(f"{config.data_dir}|{config.name}".encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"deeparch-tfds-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _as_arrays(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """A supervised tf.data split as two stacked arrays."""
    import tensorflow_datasets as tfds

    xs, ys = [], []
    for x, y in tfds.as_numpy(dataset.batch(4096)):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError("a split of the dataset is empty")
    return np.concatenate(xs), np.concatenate(ys)


def _train_validation_test(
    raw: dict[str, tuple[np.ndarray, np.ndarray]], validation_fraction: float
) -> dict[str, Split]:
    """Use the dataset's own validation split, or carve one from train (never from test)."""
    if "train" not in raw or "test" not in raw:
        raise DataError(f"dataset has splits {sorted(raw)}; train and test are required")
    splits = {"train": Split(*raw["train"]), "test": Split(*raw["test"])}
    if "validation" in raw:
        splits["validation"] = Split(*raw["validation"])
        return splits
    train = splits["train"]
    order = np.random.default_rng(VALIDATION_SPLIT_SEED).permutation(len(train))
    held_out = max(1, int(round(validation_fraction * len(train))))
    splits["train"] = Split(train.x[order[held_out:]], train.y[order[held_out:]])
    splits["validation"] = Split(train.x[order[:held_out]], train.y[order[:held_out]])
    return splits


def capped(splits: dict[str, Split], max_examples: int | None) -> dict[str, Split]:
    """The first `max_examples` examples of every split (all of them when None)."""
    if not max_examples:
        return splits
    return {name: Split(s.x[:max_examples], s.y[:max_examples]) for name, s in splits.items()}


def _to_model_inputs(split: Split) -> Split:
    """uint8 images -> float32 in [0, 1]; text -> str objects; other numbers -> float32; labels -> int32."""
    if split.x.dtype == object:  # TFDS text comes as UTF-8 bytes; models and MLflow take str
        x = np.array([text.decode("utf-8") for text in split.x.ravel()], dtype=object).reshape(split.x.shape)
    elif split.x.dtype == np.uint8:
        x = split.x.astype(np.float32) / 255.0
    else:
        x = split.x.astype(np.float32)
    y = split.y.astype(np.int32) if np.issubdtype(split.y.dtype, np.integer) else split.y.astype(np.float32)
    return Split(x, y)


def _builder_kwargs(config: DataConfig) -> dict:
    """TFDS builder arguments a dataset takes from the config (the adding problem's length T)."""
    if config.name == "adding":
        from pipelines.datasets.adding import builder_config

        return {"config": builder_config(config.sequence_length)}
    return {}


def _ensure_downloadable(config: DataConfig) -> None:
    """Fail in seconds, not after minutes of retries, when a catalog dataset cannot be fetched."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(config.name, data_dir=config.data_dir)
    if builder.is_prepared() or not config.download:
        return
    if not _host_reachable(_DOWNLOAD_HOST, timeout=5.0):
        raise DataError(
            f"dataset {config.name!r} is not in data_dir {config.data_dir or '(TFDS default)'} and "
            f"cannot be downloaded (no network); embedded datasets that need no network: "
            f"{', '.join(EMBEDDED_DATASETS)}"
        )


def _host_reachable(host: str, timeout: float) -> bool:
    """Whether a TCP connection to host:443 opens within `timeout` seconds."""
    outcome: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)  # name resolution has no timeout of its own
    return bool(outcome and outcome[0])


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
