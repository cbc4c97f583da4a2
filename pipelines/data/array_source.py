"""NumPy arrays as a source: a `.npz` file (read whole: NumPy cannot map a zip archive), or a
folder of `.npy` files with the same names, memory-mapped and streamed in chunks.

Layouts: `x_train, y_train, x_test, y_test` (`x_val, y_val` optional), or `x, y` split here.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError, DataConfig
from pipelines.data.own_files import check_enough, check_trainable, existing, targets
from pipelines.data.source import (
    VALIDATION_SPLIT_SEED,
    Chunk,
    SourceData,
    assign_splits,
    available_memory_bytes,
    file_fingerprint,
    route,
)

NPZ_LAYOUTS = "x_train, y_train, x_test, y_test (x_val, y_val optional), or x, y"
CHUNK_BYTES = 16 << 20
# A .npz file is read whole: refuse one whose arrays would take more than this share of the
# memory still available.
NPZ_MEMORY_SHARE = 0.5


def read_arrays(config: DataConfig) -> SourceData:
    """Arrays of a `.npz` file or of a folder of `.npy` files, checked, labels mapped to classes."""
    path = existing(config.path, folder=None)
    arrays = _npy_folder(path) if path.is_dir() else _npz(path)
    keys = set(arrays)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        pairs = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
        if {"x_val", "y_val"} & keys:
            pairs["validation"] = ("x_val", "y_val")
    elif {"x", "y"} <= keys:
        pairs = {"all": ("x", "y")}
    else:
        raise ConfigError(
            f"data.path: {str(path)!r} holds arrays {', '.join(sorted(keys)) or '(none)'}; "
            f"allowed: {NPZ_LAYOUTS}"
        )
    for x_key, y_key in pairs.values():
        for key in (x_key, y_key):
            if key not in arrays:
                raise ConfigError(f"data.path: {str(path)!r} has no array {key!r}; allowed: {NPZ_LAYOUTS}")
        _check_pair(arrays[x_key], arrays[y_key], x_key, y_key, path)
    shapes = {arrays[x_key].shape[1:] for x_key, _ in pairs.values()}
    if len(shapes) > 1:
        raise ConfigError(
            f"data.path: the x arrays of {str(path)!r} have examples of shapes "
            f"{', '.join(map(str, sorted(shapes)))}; allowed: one shape in every split"
        )
    # Labels are mapped to class indices over every split together, so an index means one class.
    labels = np.concatenate([np.asarray(arrays[y_key]) for _, y_key in pairs.values()])
    task, y, class_names = targets(labels, config.task, f"the y arrays of {str(path)!r}")
    ends = np.cumsum([len(arrays[y_key]) for _, y_key in pairs.values()])
    y_parts = dict(zip(pairs, np.split(y, ends[:-1]), strict=True))
    # Split codes for the parts that hold more than one split.
    codes: dict[str, np.ndarray] = {}
    if "all" in pairs:
        check_enough(len(y), path)
        codes["all"] = assign_splits(
            len(y), config.validation_fraction, config.test_fraction, VALIDATION_SPLIT_SEED
        )
    elif "validation" not in pairs:
        check_trainable(len(y_parts["train"]), path)
        codes["train"] = assign_splits(len(y_parts["train"]), config.validation_fraction)
    x_dtype = next(iter(arrays[x_key] for x_key, _ in pairs.values())).dtype
    stored = "uint8" if x_dtype == np.uint8 else "float32"

    def chunks() -> Iterator[Chunk]:
        for part, (x_key, _) in pairs.items():
            x, part_y = arrays[x_key], y_parts[part]
            part_codes = codes.get(part)
            rows = max(1, CHUNK_BYTES // max(1, x[:1].nbytes))
            for start in range(0, len(part_y), rows):
                block = slice(start, start + rows)
                x_block = np.asarray(x[block]).astype(stored, copy=False)
                if part_codes is None:
                    yield part, x_block, part_y[block]
                else:
                    yield from route(part_codes[block], x_block, part_y[block])

    return SourceData(
        name=config.name,
        version=file_fingerprint(path),
        source="npz",
        task=task,
        element_shape=tuple(int(size) for size in shapes.pop()),
        stored_dtype=stored,
        target_shape=tuple(y.shape[1:]),
        chunks=chunks,
        class_names=class_names,
        location=str(path),
        target_statistics=True,
    )


def _npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .npz file, after checking it fits in memory."""
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"data.path: {str(path)!r} is not a NumPy .npz file; "
            f"allowed: a file written by np.savez with arrays {NPZ_LAYOUTS}, or a folder of .npy files"
        )
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    available = available_memory_bytes()
    if unpacked > NPZ_MEMORY_SHARE * available:
        raise ConfigError(
            f"data.path: {str(path)!r} unpacks to {unpacked / 1e9:.1f} GB, more than half of the "
            f"{available / 1e9:.1f} GB of memory available, and a .npz file is read whole; allowed: a "
            "folder of .npy files with the same names (x_train.npy, ...), which are memory-mapped"
        )
    arrays = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError:  # an object array, which only pickle could read
                raise ConfigError(
                    f"data.path: array {key!r} in {str(path)!r} is an object array (ragged rows or "
                    "mixed types); allowed: numeric arrays whose examples all have one shape"
                ) from None
    return arrays


def _npy_folder(path: Path) -> dict[str, np.ndarray]:
    """The .npy files of a folder, memory-mapped (read chunk by chunk, never whole)."""
    arrays = {}
    for file in sorted(path.glob("*.npy")):
        try:
            arrays[file.stem] = np.load(file, mmap_mode="r", allow_pickle=False)
        except ValueError:
            raise ConfigError(
                f"data.path: {str(file)!r} is an object array (ragged rows or mixed types); "
                "allowed: numeric arrays whose examples all have one shape"
            ) from None
    return arrays


def _check_pair(x: np.ndarray, y: np.ndarray, x_key: str, y_key: str, path: Path) -> None:
    """Equal lengths and numeric inputs."""
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ConfigError(
            f"data.path: {str(path)!r} has {x_key} of shape {x.shape} but {y_key} of shape {y.shape}; "
            f"allowed: one {y_key} entry per {x_key} row"
        )
    if x.dtype.kind not in "biuf":
        raise ConfigError(
            f"data.path: {x_key} in {str(path)!r} has dtype {x.dtype}; allowed: numbers (bool, int or float)"
        )
    if len(x) == 0:
        raise ConfigError(f"data.path: {x_key} in {str(path)!r} is empty; allowed: at least one example")
