"""A folder of `.txt` files as a source: one sub-folder per class, or `train/`, `test/` (and
optionally `validation/`) split folders that each hold one sub-folder per class, as
`keras.utils.text_dataset_from_directory` reads them (aclImdb's layout). Each file is one example,
read as UTF-8 and stored as a string; the model tokenises it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError, DataConfig
from pipelines.data.own_files import class_folder_files
from pipelines.data.source import Chunk, SourceData, route

# The files `keras.utils.text_dataset_from_directory` reads.
TEXT_EXTENSIONS = (".txt",)
CHUNK_TEXTS = 1024


def read_text_folder(config: DataConfig) -> SourceData:
    """Every .txt file of the folder, labelled by its class folder, split by its split folder or seeded."""
    found = class_folder_files(config, TEXT_EXTENSIONS, "text file")
    files, labels, codes = found.files, found.labels, found.codes

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(files), CHUNK_TEXTS):
            rows = slice(start, start + CHUNK_TEXTS)
            texts = np.array([_text(file) for file in files[rows]], dtype=object)
            yield from route(codes[rows], texts, labels[rows])

    return found.source_data(config, "text", (), "string", chunks)


def _text(file: Path) -> str:
    """A file's text, refused naming the file when it is not UTF-8 or holds nothing but blanks."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"data.path: text file {str(file)!r} is not UTF-8 (byte {data[error.start]:#04x} at "
            f"offset {error.start}); allowed: UTF-8 text (re-save it as UTF-8)"
        ) from None
    if not text.strip():
        raise ConfigError(f"data.path: text file {str(file)!r} is empty; allowed: some text in every file")
    return text.removeprefix("\ufeff")
