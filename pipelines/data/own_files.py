"""What the sources of the user's own files share: finding the file, reading labels as classes or
regression targets, and the refusals that name the input, the bad value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.config import ConfigError

# An integer target with at most this many distinct values is a class label (`data.task: auto`).
MAX_INFERRED_CLASSES = 20
# Split names a CSV `split` column or an image folder's split sub-folders may use.
SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}


def existing(path_text: str, folder: bool | None) -> Path:
    """The absolute path of the user's file (or folder; either when `folder` is None), which must exist."""
    path = Path(path_text).expanduser().resolve()
    wanted = {True: "a folder", False: "a file", None: "a file or folder"}[folder]
    if not path.exists():
        raise ConfigError(f"data.path: {path_text!r} does not exist; allowed: {wanted} that exists")
    if folder is not None and path.is_dir() != folder:
        raise ConfigError(f"data.path: {path_text!r} is not {wanted}; allowed: {wanted}")
    return path


def targets(values: np.ndarray, task: str, described: str) -> tuple[str, np.ndarray, list[str]]:
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
    names = [class_name(value) for value in classes]
    return task, indices.astype(np.int32), names


def class_name(value) -> str:
    """A readable label: `3`, not `3.0` or `np.int64(3)`."""
    if isinstance(value, np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def check_enough(total: int, path: Path) -> None:
    """Refuse data too small to give train, validation and test at least one example each."""
    if total < 3:
        raise ConfigError(
            f"data.path: {str(path)!r} holds {total} example(s); "
            "allowed: at least 3 (train, validation, test)"
        )


def check_trainable(train_examples: int, path: Path) -> None:
    """Refuse a train split too small to carve a validation example out of."""
    if train_examples < 2:
        raise ConfigError(
            f"data.path: {str(path)!r} leaves {train_examples} training example(s); "
            "allowed: at least 2, so that one can be held out for validation"
        )
