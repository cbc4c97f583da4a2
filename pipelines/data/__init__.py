"""The one place that knows where data comes from and how it is stored and read.

Imports run one way: sources (`tfds_source`, `csv_source`, `array_source`, `image_source`,
`text_source`, `audio_source`, on `source`) -> the prepared format (`prepared`: TFRecord shards in a
content-addressed folder) -> the tf.data input pipeline (`input_pipeline`). `load_dataset`
prepares a configured dataset once (one streaming pass) and afterwards finds the prepared copy
again, by a key of the data config and the source's fingerprint; every stage then streams the
shards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipelines.config import DataConfig
from pipelines.data.input_pipeline import as_tf_dataset, is_cached, reads_own_files, shuffle_buffer_examples
from pipelines.data.prepared import (
    FORMAT_VERSION,
    PreparedDataset,
    PreparedSplit,
    find_prepared,
    materialise,
    open_prepared,
    remember,
)
from pipelines.data.source import VALIDATION_SPLIT_SEED, DataError, SourceData, Split, file_fingerprint

__all__ = [
    "VALIDATION_SPLIT_SEED",
    "DataError",
    "PreparedDataset",
    "PreparedSplit",
    "Split",
    "as_tf_dataset",
    "dataset_store",
    "is_cached",
    "reads_own_files",
    "shuffle_buffer_examples",
    "load_dataset",
    "open_dataset",
]

# Data config fields that change how data is read, not what it holds.
_READING_FIELDS = {"cache", "download"}


def load_dataset(config: DataConfig, store: Path | None = None) -> PreparedDataset:
    """The configured dataset in the prepared format: found in `store`, or prepared into it now.

    `store` defaults to `dataset_store()`. Problems with the user's input are `ConfigError`s and
    an unreachable dataset a `DataError`, both raised before anything is written.
    """
    store = store or dataset_store()
    key = source_key(config)
    found = find_prepared(store, key)
    if found is not None:
        return found
    dataset = materialise(read_source(config), store, config.max_examples)
    remember(store, key, dataset.digest)
    return dataset


def open_dataset(digest: str, store: Path | None = None) -> PreparedDataset | None:
    """The prepared dataset of a digest (as a run's `dataset_digest` tag names it), if still stored."""
    return open_prepared(store or dataset_store(), digest)


def read_source(config: DataConfig) -> SourceData:
    """The source `config.source` names, opened and checked, not yet read."""
    if config.source == "tfds":
        from pipelines.data.tfds_source import read_tfds

        return read_tfds(config)
    if config.source == "csv":
        from pipelines.data.csv_source import read_csv

        return read_csv(config)
    if config.source == "npz":
        from pipelines.data.array_source import read_arrays

        return read_arrays(config)
    if config.source == "text":
        from pipelines.data.text_source import read_text_folder

        return read_text_folder(config)
    if config.source == "audio":
        from pipelines.data.audio_source import read_audio_folder

        return read_audio_folder(config)
    from pipelines.data.image_source import read_images

    return read_images(config)


def source_key(config: DataConfig) -> str:
    """What decides a prepared dataset's content before it is read: the data config and the
    source's fingerprint (a TFDS builder's version; the user's files' names, sizes and times)."""
    if config.source == "tfds":
        from pipelines.data.tfds_source import tfds_fingerprint

        fingerprint = tfds_fingerprint(config)
    else:
        path = Path(config.path).expanduser().resolve()
        fingerprint = file_fingerprint(path) if path.exists() else "missing"
    described = {
        "format": FORMAT_VERSION,
        "config": config.model_dump(mode="json", exclude=_READING_FIELDS),
        "fingerprint": fingerprint,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24]


def dataset_store() -> Path:
    """Where prepared datasets live (`DEEPARCH_DATASET_STORE`, else beside the MLflow store)."""
    from pipelines import tracking

    return tracking.dataset_store_dir()
