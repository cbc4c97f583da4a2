"""TFDS datasets as a source: the embedded builders (no network) and the TFDS catalog, streamed
split by split through `tfds.load` as tf.data, never as one array."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import EMBEDDED_DATASETS, ConfigError, DataConfig
from pipelines.data.source import (
    VALIDATION_SPLIT_SEED,
    Chunk,
    DataError,
    SourceData,
    assign_splits,
    first_line,
    route,
)

_EMBEDDED_MODULES = {name: f"pipelines.datasets.{name}" for name in EMBEDDED_DATASETS}
_DOWNLOAD_HOST = "storage.googleapis.com"
CHUNK_EXAMPLES = 1024


def tfds_fingerprint(config: DataConfig) -> str:
    """What, besides the data config, decides a TFDS dataset's content: the embedded builder's
    version (the catalog's is fixed by TFDS' data_dir) and where TFDS keeps its files."""
    data_dir = str(Path(config.data_dir).resolve()) if config.data_dir else "default"
    return f"{config.name}:{_embedded_version(config.name)}:{data_dir}"


def read_tfds(config: DataConfig) -> SourceData:
    """Open a TFDS dataset (preparing it in TFDS' data_dir first if it must) for streaming."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    embedded = config.name in _EMBEDDED_MODULES
    if embedded:
        _check_can_generate(config, importlib.import_module(_EMBEDDED_MODULES[config.name]))
    else:
        _ensure_downloadable(config)
    builder_kwargs = _builder_kwargs(config)

    def load(split: str, **options) -> tf.data.Dataset:
        return tfds.load(
            config.name,
            split=split,
            data_dir=config.data_dir,
            as_supervised=True,
            builder_kwargs=builder_kwargs,
            **options,
        )

    try:
        with _preparation_lock(config):
            _, info = load("train", with_info=True, download=config.download or embedded)
    except (AssertionError, OSError, ValueError) as error:
        raise DataError(
            f"dataset {config.name!r} could not be loaded from data_dir "
            f"{config.data_dir or '(TFDS default)'} ({first_line(error)}); embedded datasets "
            f"that need no network: {', '.join(EMBEDDED_DATASETS)}"
        ) from None
    if info.splits and ("train" not in info.splits or "test" not in info.splits):
        raise DataError(
            f"dataset {config.name!r} has splits {sorted(info.splits)}; train and test are required"
        )
    own_validation = "validation" in info.splits
    label_feature = info.features[info.supervised_keys[1]]
    num_classes = getattr(label_feature, "num_classes", None)
    input_feature = info.features[info.supervised_keys[0]]
    # Audio keeps its rate (the models' spectrograms need it) and, as 16-bit PCM, its compact dtype.
    sample_rate = input_feature.sample_rate if isinstance(input_feature, tfds.features.Audio) else None
    input_spec, target_spec = load("train", download=False).element_spec
    shape = tuple(input_spec.shape)
    resize = len(shape) == 3 and None in shape[:2]  # photos of many sizes: resized to data.image_size
    if resize:
        shape = (*config.image_size, shape[2])
    if any(size is None for size in shape):
        raise DataError(f"dataset {config.name!r} has inputs of shape {shape}; allowed: a fixed shape")
    stored = {tf.uint8: "uint8", tf.string: "string"}.get(input_spec.dtype, "float32")
    if sample_rate is not None and input_spec.dtype == tf.int16:
        stored = "int16"

    def chunks() -> Iterator[Chunk]:
        for split in ("train", "validation", "test"):
            if split == "validation" and not own_validation:
                continue
            dataset = load(split, download=False)
            if resize:
                dataset = dataset.map(
                    lambda x, y: (tf.cast(tf.round(tf.image.resize(x, config.image_size)), tf.uint8), y),
                    num_parallel_calls=tf.data.AUTOTUNE,
                )
            codes = None
            if split == "train" and not own_validation:
                codes = assign_splits(_count(dataset), config.validation_fraction, seed=VALIDATION_SPLIT_SEED)
            offset = 0
            for x, y in tfds.as_numpy(dataset.batch(CHUNK_EXAMPLES).prefetch(2)):
                y = y.astype(np.int32) if num_classes else y.astype(np.float32)
                if stored == "float32":
                    x = x.astype(np.float32)
                if codes is None:
                    yield split, x, y
                else:
                    yield from route(codes[offset : offset + len(y)], x, y)
                offset += len(y)

    return SourceData(
        name=config.name,
        version=str(info.version),
        source="embedded" if embedded else "tfds-catalog",
        task="classification" if num_classes else "regression",
        element_shape=shape,
        stored_dtype=stored,
        target_shape=tuple(target_spec.shape),
        chunks=chunks,
        class_names=list(getattr(label_feature, "names", []) or [])
        or [str(label) for label in range(num_classes or 0)],
        sample_rate=sample_rate,
    )


def _check_can_generate(config: DataConfig, module) -> None:
    """Refuse an embedded dataset that is not generated yet and cannot be here (a tool it needs is
    missing: the builder module's `missing_tool()` says which and how to install it)."""
    import tensorflow_datasets as tfds

    missing_tool = getattr(module, "missing_tool", None)
    problem = missing_tool() if missing_tool else None
    if problem and not tfds.builder(config.name, data_dir=config.data_dir).is_prepared():
        raise ConfigError(f"data.name: {config.name!r} cannot be generated: {problem}")


def _count(dataset) -> int:
    """Examples in a split: TFDS knows it; a mocked or generated split is counted."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(0, lambda count, _: count + 1))


def _embedded_version(name: str) -> str | None:
    """The version of an embedded builder (its data changes only with it)."""
    if name not in _EMBEDDED_MODULES:
        return None
    module = importlib.import_module(_EMBEDDED_MODULES[name])
    builders = [
        value for value in vars(module).values() if hasattr(value, "VERSION") and hasattr(value, "_info")
    ]
    return str(builders[0].VERSION) if builders else None


@contextlib.contextmanager
def _preparation_lock(config: DataConfig) -> Iterator[None]:
    """One process at a time prepares a dataset: two would race to rename TFDS' folder into place."""
    key = hashlib.sha256(f"{config.data_dir}|{config.name}".encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"deeparch-tfds-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


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
