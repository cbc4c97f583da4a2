"""What the sources of the user's own files share: finding the file, reading labels as classes or
regression targets, the class-folder layout of image and text folders, and the refusals that name
the input, the bad value and what is allowed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError, DataConfig
from pipelines.data.source import (
    SPLITS,
    TRAIN,
    VALIDATION_SPLIT_SEED,
    Chunk,
    SourceData,
    assign_splits,
    carve_validation,
    file_fingerprint,
    regular_files,
)

# An integer target with at most this many distinct values is a class label (`data.task: auto`).
MAX_INFERRED_CLASSES = 20
# Split names a CSV `split` column or an image folder's split sub-folders may use.
SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}
SKIPPED_SHOWN = 3  # skipped files named in the note a prepare run prints (all are in its artifact)


class UnreadableFile(Exception):
    """A file of the user's folder that cannot be read: why, and what a readable one is."""

    def __init__(self, file: Path, reason: str, allowed: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file, self.reason, self.allowed = file, reason, allowed


@dataclass
class UnreadableFiles:
    """What a folder source does with a file it cannot read: stop the run naming it
    (`data.on_unreadable: error`), or leave it out and list it (`skip`): in `skipped` and, once the
    folder has been read, in a note."""

    folder: Path
    kind: str  # how refusals name a file: "image", "WAV file", "text file"
    skip: bool
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def meet(self, problem: UnreadableFile) -> None:
        """Refuse the file, or leave it out under `skip`."""
        if not self.skip:
            raise ConfigError(
                f"data.path: {self.kind} {str(problem.file)!r} {problem.reason}; {problem.allowed} "
                "(or data.on_unreadable=skip to leave such files out)"
            )
        self.skipped.append({"file": os.path.relpath(problem.file, self.folder), "reason": problem.reason})

    def done(self, total: int) -> None:
        """Note the files left out, once all `total` have been read."""
        if not self.skipped:
            return
        shown = ", ".join(entry["file"] for entry in self.skipped[:SKIPPED_SHOWN])
        more = ", ..." if len(self.skipped) > SKIPPED_SHOWN else ""
        self.notes.append(
            f"skipped {len(self.skipped):,} of {total:,} {self.kind}s that cannot be read "
            f"(data.on_unreadable=skip): {shown}{more}; all are listed in skipped_files.json"
        )


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


@dataclass
class ClassFolderFiles:
    """The files of a folder with one sub-folder per class, labelled and assigned to splits, in a
    seeded random order (so that a split streamed through a bounded shuffle buffer mixes classes)."""

    folder: Path  # the user's folder, absolute
    files: list[Path]
    labels: np.ndarray  # int32 class index per file
    codes: np.ndarray  # split code per file (TRAIN, VALIDATION, TEST)
    class_names: list[str]
    # Files directly in the folder, no class sub-folders: one class named after the folder, which
    # only a generative model can use (it imitates them; there are no classes to learn).
    unlabelled: bool = False

    def unreadable(self, config: DataConfig, kind: str) -> UnreadableFiles:
        """What reading these files does with one that cannot be read, as `data.on_unreadable` says."""
        return UnreadableFiles(self.folder, kind, skip=config.on_unreadable == "skip")

    def source_data(
        self,
        config: DataConfig,
        source: str,
        element_shape: tuple[int, ...],
        stored_dtype: str,
        chunks: Callable[[], Iterator[Chunk]],
        unreadable: UnreadableFiles,
        **extra,
    ) -> SourceData:
        """These files as the classification source `source` (images, text, audio) whose `chunks`
        read them, known again by the folder's fingerprint; the files `unreadable` left out listed."""
        if self.unlabelled:
            unreadable.notes.append(
                f"no class sub-folders: the {len(self.files):,} files directly in the folder are one "
                "unlabelled set, for a GAN to imitate (a classifier needs one sub-folder per class)"
            )
        return SourceData(
            notes=unreadable.notes,
            skipped=unreadable.skipped,
            name=config.name,
            version=file_fingerprint(self.folder),
            source=source,
            task="classification",
            element_shape=element_shape,
            stored_dtype=stored_dtype,
            target_shape=(),
            chunks=chunks,
            class_names=self.class_names,
            location=str(self.folder),
            **extra,
        )


def class_folder_files(
    config: DataConfig, extensions: tuple[str, ...], kind: str, unlabelled: bool = False
) -> ClassFolderFiles:
    """Every `extensions` file of the folder `data.path`, labelled by its class sub-folder
    (`keras.utils.*_dataset_from_directory`'s layout), split by its `train/`, `test/` (and optional
    `validation/`) split folder, or by a seeded draw when there are none. `kind` names the files
    in refusals ("image", "text file"). With `unlabelled`, a folder without sub-folders that holds
    such files directly is one unlabelled set (`ClassFolderFiles.unlabelled`)."""
    folder = existing(config.path, folder=True)
    if unlabelled and not _subfolders(folder):
        return _unlabelled_files(config, folder, extensions, kind)
    split_folders = {
        SPLIT_NAMES[child.name.lower()]: child
        for child in _subfolders(folder)
        if child.name.lower() in SPLIT_NAMES
    }
    if split_folders and not {"train", "test"} <= set(split_folders):
        present = ", ".join(f"{child.name}/" for child in split_folders.values())
        raise ConfigError(
            f"data.path: {str(folder)!r} has split folder(s) {present} but not both train/ and test/; "
            "allowed: train/ and test/ (validation/ optional), each with one sub-folder per class, "
            "or one sub-folder per class"
        )
    if split_folders:
        class_names = _class_folders(split_folders["train"], kind)
        files, labels, codes = [], [], []
        for split in SPLITS:
            if split not in split_folders:
                continue
            labelled = _labelled_files(split_folders[split], class_names, extensions, kind, split == "train")
            for path, label in labelled:
                files.append(path)
                labels.append(label)
                codes.append(SPLITS.index(split))
        codes = np.array(codes, dtype=np.int8)
        check_trainable(int((codes == TRAIN).sum()), folder)
        if "validation" not in split_folders:
            codes = carve_validation(codes, config.validation_fraction, VALIDATION_SPLIT_SEED)
    else:
        class_names = _class_folders(folder, kind)
        pairs = list(_labelled_files(folder, class_names, extensions, kind, required=True))
        files, labels = [path for path, _ in pairs], [label for _, label in pairs]
        check_enough(len(files), folder)
        codes = assign_splits(
            len(files), config.validation_fraction, config.test_fraction, VALIDATION_SPLIT_SEED
        )
    order = np.random.default_rng(VALIDATION_SPLIT_SEED).permutation(len(files))
    return ClassFolderFiles(
        folder=folder,
        files=[files[index] for index in order],
        labels=np.array(labels, dtype=np.int32)[order],
        codes=codes[order],
        class_names=class_names,
    )


def _unlabelled_files(
    config: DataConfig, folder: Path, extensions: tuple[str, ...], kind: str
) -> ClassFolderFiles:
    """The files directly in a folder without sub-folders, as one class named after the folder."""
    files = _files_with(folder, extensions)
    if not files:
        raise ConfigError(
            f"data.path: {str(folder)!r} holds no {kind} and no sub-folder; allowed: one sub-folder of "
            f"{kind}s per class, or {', '.join(extensions)} files directly in it"
        )
    check_enough(len(files), folder)
    codes = assign_splits(len(files), config.validation_fraction, config.test_fraction, VALIDATION_SPLIT_SEED)
    order = np.random.default_rng(VALIDATION_SPLIT_SEED).permutation(len(files))
    return ClassFolderFiles(
        folder=folder,
        files=[files[index] for index in order],
        labels=np.zeros(len(files), dtype=np.int32),
        codes=codes[order],
        class_names=[folder.name or "images"],
        unlabelled=True,
    )


def _files_with(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """The `extensions` files under `folder`, in sorted order."""
    names = (file for file, _ in regular_files(folder) if os.path.splitext(file)[1].lower() in extensions)
    return [Path(file) for file in sorted(names)]


def _subfolders(folder: Path) -> list[Path]:
    return sorted(child for child in folder.iterdir() if child.is_dir() and not child.name.startswith("."))


def _class_folders(folder: Path, kind: str) -> list[str]:
    """The class names of a folder: its sub-folders, at least two."""
    classes = [child.name for child in _subfolders(folder)]
    if len(classes) < 2:
        raise ConfigError(
            f"data.path: {str(folder)!r} has {len(classes)} class sub-folder(s); "
            f"allowed: one sub-folder of {kind}s per class, at least two"
        )
    return classes


def _labelled_files(
    folder: Path, class_names: list[str], extensions: tuple[str, ...], kind: str, required: bool
) -> Iterator[tuple[Path, int]]:
    """(file, class index) for every `extensions` file under `folder`'s class folders, in sorted order.

    Every class folder must hold such a file where `required` (the split that trains); a class
    folder that is not one of `class_names` is refused.
    """
    for child in _subfolders(folder):
        if child.name not in class_names:
            raise ConfigError(
                f"data.path: class folder {child.name!r} in {str(folder)!r} is not a class of the train "
                f"split; allowed: {', '.join(class_names)}"
            )
        found = _files_with(child, extensions)
        if required and not found:
            raise ConfigError(
                f"data.path: class folder {child.name!r} in {str(folder)!r} holds no {kind}; "
                f"allowed: at least one {', '.join(extensions)} file per class folder"
            )
        label = class_names.index(child.name)
        for file in found:
            yield file, label
