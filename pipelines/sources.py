"""The user's own data: a CSV file, a NumPy `.npz` file or a folder of images, as a `LoadedDataset`.

Each loader returns the same splits and `DataSpec` a TFDS dataset gives, so every stage and
builder works unchanged. Splits are seeded (`VALIDATION_SPLIT_SEED`) unless the file holds its
own; a time series is split in time order. A problem with the file itself (missing, wrong
columns, too short, ragged) is a `ConfigError` that names the input, the bad value and what is
allowed, raised before any MLflow run starts.
"""

from __future__ import annotations

import hashlib
import itertools
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.spec import DataSpec
from pipelines.config import ConfigError, DataConfig
from pipelines.data import (
    VALIDATION_SPLIT_SEED,
    LoadedDataset,
    Split,
    _first_line,
    _to_model_inputs,
    _train_validation_test,
    capped,
)

# An integer target with at most this many distinct values is a class label (`data.task: auto`).
MAX_INFERRED_CLASSES = 20
# A CSV column of this name assigns each row to a split.
SPLIT_COLUMN = "split"
SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}
# The files `keras.utils.image_dataset_from_directory` reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
NPZ_LAYOUTS = "x_train, y_train, x_test, y_test (x_val, y_val optional), or x, y"

Arrays = tuple[np.ndarray, np.ndarray]


def load_own_dataset(config: DataConfig) -> LoadedDataset:
    """The loader `config.source` names (csv, npz or images)."""
    loaders: dict[str, Callable[[DataConfig], LoadedDataset]] = {
        "csv": load_csv,
        "npz": load_npz,
        "images": load_images,
    }
    return loaders[config.source](config)


def load_csv(config: DataConfig) -> LoadedDataset:
    """Feature columns and a target column; or, with `data.task: forecast`, windows of a series."""
    import pandas as pd

    path = _existing(config.path, folder=False)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"data.path: {str(path)!r} is not a readable CSV file ({_first_line(error)}); "
            "allowed: a comma-separated file with a header row"
        ) from None
    columns = ", ".join(map(str, frame.columns))
    if config.target not in frame.columns:
        raise ConfigError(
            f"data.target: column {config.target!r} is not in {str(path)!r}; allowed: {columns}"
        )
    if config.task == "forecast":
        return _csv_forecast(config, path, frame)
    features = _feature_columns(config, path, frame)
    x = frame[features].to_numpy(np.float32)
    task, y, class_names = _targets(
        frame[config.target].to_numpy(), config.task, f"column {config.target!r} of {str(path)!r}"
    )
    if SPLIT_COLUMN in frame.columns:
        raw = _split_by_column(frame[SPLIT_COLUMN], x, y, path)
    else:
        raw = _hold_out_test(x, y, config.test_fraction, path)
    splits = _splits(raw, config)
    train = splits["train"].x
    variance = train.var(axis=0)
    spec = _spec(
        splits,
        task,
        class_names,
        # A constant column keeps its values: dividing by a zero spread would blow up new ones.
        input_mean=tuple(float(v) for v in train.mean(axis=0)),
        input_variance=tuple(float(v) if v > 0 else 1.0 for v in variance),
    )
    return _loaded(config, "csv", path, spec, splits, class_names, features=features)


def load_npz(config: DataConfig) -> LoadedDataset:
    """Arrays `x_train, y_train[, x_val, y_val], x_test, y_test`, or `x, y` split here."""
    path = _existing(config.path, folder=False)
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"data.path: {str(path)!r} is not a NumPy .npz file; "
            f"allowed: a file written by np.savez with arrays {NPZ_LAYOUTS}"
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
    labels = np.concatenate([arrays[y_key] for _, y_key in pairs.values()])
    task, y, class_names = _targets(labels, config.task, f"the y arrays of {str(path)!r}")
    ends = np.cumsum([len(arrays[y_key]) for _, y_key in pairs.values()])
    raw = {
        split: (arrays[x_key], part)
        for (split, (x_key, _)), part in zip(pairs.items(), np.split(y, ends[:-1]), strict=True)
    }
    if "all" in raw:
        raw = _hold_out_test(*raw["all"], config.test_fraction, path)
    splits = _splits(raw, config)
    splits = {name: Split(_to_model_inputs(split).x, split.y) for name, split in splits.items()}
    spec = _spec(splits, task, class_names)
    return _loaded(config, "npz", path, spec, splits, class_names)


def load_images(config: DataConfig) -> LoadedDataset:
    """A folder with one sub-folder of images per class, resized to `data.image_size`, in [0, 1]."""
    import keras
    import tensorflow as tf

    folder = _existing(config.path, folder=True)
    classes = sorted(child for child in folder.iterdir() if child.is_dir() and not child.name.startswith("."))
    if len(classes) < 2:
        raise ConfigError(
            f"data.path: {str(folder)!r} has {len(classes)} class sub-folder(s); "
            "allowed: one sub-folder of images per class, at least two"
        )
    for class_folder in classes:
        if not any(
            file.suffix.lower() in IMAGE_EXTENSIONS for file in class_folder.rglob("*") if file.is_file()
        ):
            raise ConfigError(
                f"data.path: class folder {class_folder.name!r} in {str(folder)!r} holds no image; "
                f"allowed: at least one {', '.join(IMAGE_EXTENSIONS)} file per class folder"
            )
    images = keras.utils.image_dataset_from_directory(
        folder,
        labels="inferred",
        label_mode="int",
        color_mode="grayscale" if config.grayscale else "rgb",
        image_size=tuple(config.image_size),
        shuffle=False,
        batch_size=256,
        verbose=False,
    )
    xs, ys = [], []
    try:
        for x, y in images:
            xs.append(x.numpy())
            ys.append(y.numpy())
    except tf.errors.InvalidArgumentError as error:
        raise ConfigError(
            f"data.path: an image in {str(folder)!r} cannot be decoded ({_first_line(error)}); "
            f"allowed: {', '.join(IMAGE_EXTENSIONS)} files"
        ) from None
    x = (np.concatenate(xs) / 255.0).astype(np.float32)  # [0, 1], like the TFDS images
    y = np.concatenate(ys).astype(np.int32)
    splits = _splits(_hold_out_test(x, y, config.test_fraction, folder), config)
    class_names = list(images.class_names)
    spec = _spec(splits, "classification", class_names)
    return _loaded(config, "images", folder, spec, splits, class_names)


def _csv_forecast(config: DataConfig, path: Path, frame) -> LoadedDataset:
    """Windows of `window` past values predicting the `horizon` next ones, split in time order.

    The series is cut in three stretches (train, validation, test: the last `test_fraction` of
    it); a window belongs to the stretch its targets fall in, so no target is shared across
    splits, while its past values may reach back before the cut, as they would in real use.
    """
    import pandas as pd

    described = f"{str(path)!r}"
    if config.time_column is not None:
        if config.time_column not in frame.columns:
            raise ConfigError(
                f"data.time_column: column {config.time_column!r} is not in {described}; "
                f"allowed: {', '.join(map(str, frame.columns))}"
            )
        frame = frame.sort_values(config.time_column, kind="stable")
    column = frame[config.target]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ConfigError(
            f"data.target: column {config.target!r} of {described} is not numeric (e.g. "
            f"{column.iloc[0]!r}); allowed for data.task forecast: a column of numbers"
        )
    _check_complete(column, "data.target", described)
    series = column.to_numpy(np.float32)
    window, horizon = config.window, config.horizon
    bounds = _forecast_bounds(len(series), config)
    if bounds is None:
        needed = next(n for n in itertools.count(window + horizon) if _forecast_bounds(n, config))
        raise ConfigError(
            f"data.window: {window} (with data.horizon {horizon}) needs at least {needed} rows in "
            f"{described}, which has {len(series)}; allowed: a smaller data.window or a longer series"
        )
    train_end, validation_end = bounds

    def windows(first: int, last: int) -> Split:
        # One window per target start t in [first, last]: the `window` values before t predict
        # the `horizon` values from t on.
        starts = np.arange(first, last + 1)
        x = np.stack([series[t - window : t] for t in starts])[..., None]
        y = np.stack([series[t : t + horizon] for t in starts])
        return Split(x, y)

    splits = capped(
        {
            "train": windows(window, train_end - horizon),
            "validation": windows(train_end, validation_end - horizon),
            "test": windows(validation_end, len(series) - horizon),
        },
        config.max_examples,
    )
    history = series[:train_end]
    mean, std = float(history.mean()), float(history.std())
    spec = DataSpec(
        input_shape=(window, 1),
        task="regression",
        num_outputs=horizon,
        input_mean=(mean,),
        input_variance=(std**2 if std > 0 else 1.0,),
        target_mean=mean,
        target_scale=std if std > 0 else 1.0,
    )
    return _loaded(config, "csv", path, spec, splits, [], features=[config.target], forecast=True)


def _forecast_bounds(length: int, config: DataConfig) -> tuple[int, int] | None:
    """Where the train and validation stretches of a series end, or None when one is too short."""
    test_points = max(config.horizon, round(config.test_fraction * length))
    validation_end = length - test_points
    validation_points = max(config.horizon, round(config.validation_fraction * validation_end))
    train_end = validation_end - validation_points
    if train_end - config.horizon < config.window:  # not even one training window
        return None
    return train_end, validation_end


def _feature_columns(config: DataConfig, path: Path, frame) -> list[str]:
    """The chosen feature columns, or every numeric column besides the target and the split."""
    import pandas as pd

    described = f"{str(path)!r}"
    columns = [str(column) for column in frame.columns]
    if config.features is None:
        excluded = {config.target, SPLIT_COLUMN}
        features = [
            column
            for column in columns
            if column not in excluded and pd.api.types.is_numeric_dtype(frame[column])
        ]
        if not features:
            raise ConfigError(
                f"data.features: {described} has no numeric column besides the target "
                f"{config.target!r} (columns: {', '.join(columns)}); allowed: at least one numeric feature"
            )
    else:
        features = list(config.features)
        missing = [column for column in features if column not in columns]
        if missing:
            raise ConfigError(
                f"data.features: {', '.join(map(repr, missing))} not in {described}; "
                f"allowed: {', '.join(columns)}"
            )
        if config.target in features:
            raise ConfigError(
                f"data.features: {config.target!r} is the target column; allowed: the other columns"
            )
    for column in features:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            example = values[pd.to_numeric(values, errors="coerce").isna()].iloc[0]
            numeric = [c for c in columns if c != config.target and pd.api.types.is_numeric_dtype(frame[c])]
            raise ConfigError(
                f"data.features: column {column!r} of {described} is not numeric (it holds {example!r}); "
                f"allowed: numeric columns ({', '.join(numeric) or 'none'})"
            )
        _check_complete(values, "data.features", described)
    return features


def _check_complete(values, field: str, described: str) -> None:
    """Refuse a column with empty cells: no silent guesses for missing values."""
    empty = int(values.isna().sum())
    if empty:
        raise ConfigError(
            f"{field}: column {values.name!r} of {described} has {empty} empty cell(s); "
            "allowed: a value in every row"
        )


def _targets(values: np.ndarray, task: str, described: str) -> tuple[str, np.ndarray, list[str]]:
    """The task, the targets (class indices or float32 values) and the class names.

    `auto`: text or booleans, and integers with at most MAX_INFERRED_CLASSES distinct values,
    are class labels; other numbers are regression targets.
    """
    kind = values.dtype.kind
    text = kind in "OUSb"
    if kind == "O" and any(value is None or value != value for value in values.ravel()):  # None or NaN
        raise ConfigError(f"data.target: {described} has empty cells; allowed: a value in every row")
    if kind == "f" and np.isnan(values).any():
        raise ConfigError(f"data.target: {described} has empty cells; allowed: a value in every row")
    if task == "auto":
        few = kind in "iu" and values.ndim == 1 and len(np.unique(values)) <= MAX_INFERRED_CLASSES
        task = "classification" if text or few else "regression"
    if task == "regression":
        if text:
            raise ConfigError(
                f"data.task: 'regression' needs numbers, but {described} holds {values.ravel()[0]!r}; "
                "allowed: classification (or auto) for labels"
            )
        return task, values.astype(np.float32), []
    if values.ndim > 1 and values.shape[1:] != (1,):
        raise ConfigError(
            f"data.task: 'classification' needs one label per example, but {described} has shape "
            f"{values.shape}; allowed: labels of shape (examples,), or data.task regression"
        )
    values = values.reshape(len(values))
    if kind == "O":
        values = values.astype(str)
    classes, indices = np.unique(values, return_inverse=True)
    names = [_class_name(value) for value in classes]
    return task, indices.astype(np.int32), names


def _class_name(value) -> str:
    """A readable label: `3`, not `3.0` or `np.int64(3)`."""
    if isinstance(value, np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


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


def _split_by_column(column, x: np.ndarray, y: np.ndarray, path: Path) -> dict[str, Arrays]:
    """Rows assigned by the CSV's `split` column (train, validation or val, test)."""
    names = column.astype(str).str.strip().str.lower()
    unknown = sorted(set(names) - set(SPLIT_NAMES))
    if unknown:
        raise ConfigError(
            f"data.path: column {SPLIT_COLUMN!r} of {str(path)!r} holds {unknown[0]!r}; "
            f"allowed: {', '.join(SPLIT_NAMES)}"
        )
    mapped = names.map(SPLIT_NAMES).to_numpy()
    raw = {split: (x[mapped == split], y[mapped == split]) for split in dict.fromkeys(SPLIT_NAMES.values())}
    raw = {split: arrays for split, arrays in raw.items() if len(arrays[1])}
    absent = [split for split in ("train", "test") if split not in raw]
    if absent:
        raise ConfigError(
            f"data.path: column {SPLIT_COLUMN!r} of {str(path)!r} names no {absent[0]} row; "
            "allowed: train and test rows (validation is carved from train when absent)"
        )
    return raw


def _hold_out_test(x: np.ndarray, y: np.ndarray, fraction: float, path: Path) -> dict[str, Arrays]:
    """A seeded random `fraction` of the examples as test, the rest as train."""
    if len(y) < 3:
        raise ConfigError(
            f"data.path: {str(path)!r} holds {len(y)} example(s); "
            "allowed: at least 3 (train, validation, test)"
        )
    # Another seed than the validation carve-out's, so that the two draws are independent.
    order = np.random.default_rng(VALIDATION_SPLIT_SEED + 1).permutation(len(y))
    held_out = min(len(y) - 2, max(1, round(fraction * len(y))))
    test, train = order[:held_out], order[held_out:]
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}


def _splits(raw: dict[str, Arrays], config: DataConfig) -> dict[str, Split]:
    """Train, validation (carved from train when absent) and test, each capped at max_examples."""
    if "validation" not in raw and len(raw["train"][1]) < 2:
        raise ConfigError(
            f"data.path: {config.path!r} leaves {len(raw['train'][1])} training example(s); "
            "allowed: at least 2, so that one can be held out for validation"
        )
    return capped(_train_validation_test(raw, config.validation_fraction), config.max_examples)


def _spec(splits: dict[str, Split], task: str, class_names: list[str], **statistics) -> DataSpec:
    """The builders' view of the data; a regression target is standardised with the train split's."""
    train = splits["train"]
    input_shape = tuple(int(size) for size in train.x.shape[1:])
    if task == "classification":
        return DataSpec(input_shape=input_shape, task=task, num_classes=len(class_names), **statistics)
    scale = float(train.y.std())
    return DataSpec(
        input_shape=input_shape,
        task="regression",
        num_outputs=int(np.prod(train.y.shape[1:])) or 1,
        target_mean=float(train.y.mean()),
        target_scale=scale if scale > 0 else 1.0,
        **statistics,
    )


def _loaded(
    config: DataConfig,
    source: str,
    path: Path,
    spec: DataSpec,
    splits: dict[str, Split],
    class_names: list[str],
    **details,
) -> LoadedDataset:
    return LoadedDataset(
        name=config.name,
        version=_content_hash(path),
        source=source,
        spec=spec,
        splits=splits,
        class_names=class_names,
        location=str(path),
        **details,
    )


def _existing(path_text: str, folder: bool) -> Path:
    """The absolute path of the user's file (or folder), which must exist."""
    path = Path(path_text).expanduser().resolve()
    wanted = "a folder" if folder else "a file"
    if not path.exists():
        raise ConfigError(f"data.path: {path_text!r} does not exist; allowed: {wanted} that exists")
    if path.is_dir() != folder:
        raise ConfigError(f"data.path: {path_text!r} is not {wanted}; allowed: {wanted}")
    return path


def _content_hash(path: Path) -> str:
    """Short SHA-256 of a file's bytes, or of a folder's file names and bytes: the data's version."""
    sha = hashlib.sha256()
    if not path.is_dir():
        sha.update(path.read_bytes())
        return sha.hexdigest()[:12]
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        sha.update(str(file.relative_to(path)).encode())  # the class folder is part of the data
        sha.update(file.read_bytes())
    return sha.hexdigest()[:12]
