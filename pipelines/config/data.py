"""The `data` section: where the data comes from and how it is read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from pipelines.config.base import PositiveInt, StrictModel

EMBEDDED_DATASETS = ("digits", "mnist1d", "adding", "reviews", "spoken_digits")
# The embedded datasets that hold sequences (spoken_digits: waveforms), not images.
SEQUENCE_DATASETS = ("mnist1d", "adding", "spoken_digits")
# Cells a CSV holds for "no value": read as empty in every column but a text column (data.na_values).
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "?", "-", "null", "NULL", "None", "NaN", "nan", "<NA>", "#N/A")
# Names a CSV delimiter may be given by on a command line, where a tab or a pipe is awkward to type.
DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "space": " "}


class DataConfig(StrictModel):
    # `source` and `path` come first: the validators of the fields below read them.
    source: Literal["tfds", "csv", "npz", "images", "text", "audio"] = Field(
        "tfds",
        description="Where the data comes from: TFDS, a CSV file, NumPy arrays (a .npz file or a folder of "
        ".npy files), an image folder, a folder of .txt files or a folder of .wav files.",
    )
    path: str | None = Field(
        None,
        validate_default=True,
        description="The csv/npz file, the folder of .npy files, or the image, text or audio folder (one "
        "sub-folder per class, optionally inside train/, test/ and validation/ folders); not for tfds.",
    )
    name: str | None = Field(
        None,
        validate_default=True,
        description="tfds: embedded dataset (digits, mnist1d, adding, reviews, spoken_digits) or a TFDS "
        "catalog name; other sources: a label for the data, default the file's stem.",
    )
    data_dir: str | None = Field(None, description="TFDS data directory; None uses TFDS' default.")
    validation_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.1, description="Share of the train split held out for validation when none is given."
    )
    max_examples: PositiveInt | None = Field(
        None, description="Cap on examples per split, for quick trials; None keeps all."
    )
    download: bool = Field(True, description="Allow TFDS to download a catalog dataset.")
    sequence_length: Annotated[int, Field(ge=2)] = Field(
        100, description="Sequence length T of the `adding` dataset; other datasets ignore it."
    )
    target: str | None = Field(
        None, validate_default=True, description="csv: the column to predict (label, value or time series)."
    )
    features: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="csv: the feature columns; None takes every other numeric column."
    )
    columns: dict[str, Literal["numeric", "categorical", "text", "ignore"]] | None = Field(
        None,
        description="csv tables: the kind of a column, overriding the one inferred from the file's first "
        "rows (e.g. {zip: categorical, id: ignore}); unnamed columns keep theirs.",
    )
    text_column: str | None = Field(
        None,
        description="csv: the column of text to classify, read as raw strings; auto: the one non-numeric "
        "column besides data.target, if there is exactly one (set for rnn, lstm, cnn); None: that column "
        "only when it is the only one besides data.target, else the numeric features.",
    )
    task: Literal["auto", "classification", "regression", "forecast"] = Field(
        "auto",
        description="csv/npz: auto infers it (text, or whole numbers with at most 20 values: "
        "classification; other numbers: regression); forecast: csv time series.",
    )
    time_column: str | None = Field(
        None, description="csv forecast: the column that orders the rows in time; None keeps file order."
    )
    window: PositiveInt = Field(24, description="csv forecast: past values each forecast reads.")
    horizon: PositiveInt = Field(1, description="csv forecast: next values each forecast predicts.")
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = Field(
        [32, 32],
        description="images (and TFDS photos of many sizes): [height, width] every image is resized to.",
    )
    grayscale: bool = Field(False, description="images: read one channel instead of three (RGB).")
    sample_rate: Annotated[int, Field(ge=1000, le=192000)] = Field(
        8000,
        description="audio: samples per second every clip is stored at (other rates are resampled).",
    )
    audio_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = Field(
        1.0,
        description="audio: length of every clip in seconds (longer ones cut at the end, shorter padded).",
    )
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.2, description="csv/npz/images/text/audio: share held out for test when the data has no test split."
    )
    cache: Literal["auto", "memory", "none"] = Field(
        "auto",
        description="Keep prepared splits in memory after the first epoch (memory), stream them from disk "
        "every epoch (none), or keep those up to 256 MB (auto).",
    )
    delimiter: str | None = Field(
        None,
        description="csv: the character between fields (, ; | or tab); None sniffs it from the first rows.",
    )
    encoding: str = Field(
        "utf-8", description="csv: the file's text encoding (utf-8, cp1252, latin-1, utf-16, ...)."
    )
    decimal: Literal[".", ","] = Field(
        ".", description="csv: the decimal mark of numbers (',' for files saved in a European locale)."
    )
    na_values: list[str] = Field(
        list(MISSING_TOKENS),
        description="csv: cell values read as empty (missing) in every column but a text column.",
    )
    on_unreadable: Literal["error", "skip"] = Field(
        "error",
        description="images/text/audio folders: a file that cannot be read stops the run (error), or is "
        "left out, counted, listed in skipped_files.json and tagged on the run (skip).",
    )

    @field_validator("path")
    @classmethod
    def _path_for_own_data(cls, path: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if source not in (None, "tfds") and not path:
            raise ValueError(f"required when data.source is {source!r}; give the file or folder to read")
        return path

    @field_validator("delimiter")
    @classmethod
    def _one_delimiter(cls, delimiter: str | None) -> str | None:
        if delimiter is None:
            return None
        delimiter = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum():
            raise ValueError(
                f"{delimiter!r} is not one field separator; allowed: one character such as , ; | or "
                f"{', '.join(DELIMITER_NAMES)}"
            )
        return delimiter

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        import codecs

        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(
                f"{encoding!r} is not a text encoding Python knows; allowed: e.g. utf-8, cp1252, latin-1, "
                "utf-16"
            ) from None

    @field_validator("delimiter", "encoding", "decimal", "na_values")
    @classmethod
    def _dialect_for_csv(cls, value: Any, info: ValidationInfo) -> Any:
        source = info.data.get("source")
        if source != "csv" and value != cls.model_fields[info.field_name].default:
            raise ValueError(f"applies to data.source 'csv', not {source!r}; allowed: leave it unset here")
        return value

    @field_validator("on_unreadable")
    @classmethod
    def _skipping_for_folders(cls, value: str, info: ValidationInfo) -> str:
        source = info.data.get("source")
        if value == "skip" and source not in ("images", "text", "audio"):
            raise ValueError(
                f"applies to folders of files (data.source images, text or audio), not {source!r}; "
                "allowed: error here"
            )
        return value

    @field_validator("target")
    @classmethod
    def _target_for_csv(cls, target: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "csv" and not target:
            raise ValueError("required when data.source is 'csv'; give the name of the column to predict")
        return target

    @field_validator("columns")
    @classmethod
    def _columns_for_csv(cls, columns: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if columns and info.data.get("source") != "csv":
            raise ValueError(
                f"applies to data.source 'csv', not {info.data.get('source')!r}; allowed: null here"
            )
        return columns

    @field_validator("text_column")
    @classmethod
    def _text_column_for_csv(cls, column: str | None, info: ValidationInfo) -> str | None:
        if column is None:
            return column
        if info.data.get("source") != "csv":
            raise ValueError(
                f"applies to data.source 'csv', not {info.data.get('source')!r} (a text folder holds only "
                "text); allowed: null here"
            )
        if info.data.get("features") is not None:
            raise ValueError("data.features is given too, and both choose the inputs; allowed: one of them")
        if column == info.data.get("target"):
            raise ValueError("is the target column; allowed: the column of text, or auto")
        return column

    @field_validator("task")
    @classmethod
    def _task_fits_source(cls, task: str, info: ValidationInfo) -> str:
        source = info.data.get("source")
        allowed = {
            "tfds": ("auto",),  # a TFDS dataset declares its own task
            "csv": ("auto", "classification", "regression", "forecast"),
            "npz": ("auto", "classification", "regression"),
            "images": ("auto", "classification"),
            "text": ("auto", "classification"),
            "audio": ("auto", "classification"),
        }.get(source, (task,))
        if task not in allowed:
            raise ValueError(f"does not apply to data.source {source!r}; allowed: {', '.join(allowed)}")
        return task

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if source != "tfds":
            path = info.data.get("path")
            return name or (Path(path).stem if path else source)
        if name is None:
            raise ValueError(
                f"required when data.source is 'tfds'; allowed: {', '.join(EMBEDDED_DATASETS)} "
                "or a TFDS catalog name"
            )
        if name in EMBEDDED_DATASETS:
            return name
        from pipelines.catalog import catalog_names  # imports TFDS, only for non-embedded names

        if name not in catalog_names():
            raise ValueError(
                f"unknown dataset; allowed: {', '.join(EMBEDDED_DATASETS)} or a TFDS catalog name"
            )
        return name
