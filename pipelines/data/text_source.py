"""A folder of `.txt` files as a source: one sub-folder per class, or `train/`, `test/` (and
optionally `validation/`) split folders that each hold one sub-folder per class, as
`keras.utils.text_dataset_from_directory` reads them (aclImdb's layout). Each file is one example,
read as UTF-8 and stored as a string; the model tokenises it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import DataConfig
from pipelines.data.own_files import UnreadableFile, class_folder_files
from pipelines.data.source import Chunk, SourceData, route

# The files `keras.utils.text_dataset_from_directory` reads.
TEXT_EXTENSIONS = (".txt",)
CHUNK_TEXTS = 1024


def read_text_folder(config: DataConfig) -> SourceData:
    """Every .txt file of the folder, labelled by its class folder, split by its split folder or seeded."""
    found = class_folder_files(config, TEXT_EXTENSIONS, "text file")
    files, labels, codes = found.files, found.labels, found.codes
    unreadable = found.unreadable(config, "text file")

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(files), CHUNK_TEXTS):
            texts, read = [], []
            for index in range(start, min(start + CHUNK_TEXTS, len(files))):
                try:
                    texts.append(_text(files[index]))
                except UnreadableFile as problem:
                    unreadable.meet(problem)
                    continue
                read.append(index)
            if read:
                yield from route(codes[read], np.array(texts, dtype=object), labels[read])
        unreadable.done(len(files))

    return found.source_data(config, "text", (), "string", chunks, unreadable)


def _text(file: Path) -> str:
    """A file's text; `UnreadableFile` when it is not UTF-8 or holds nothing but blanks."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            file,
            f"is not UTF-8 (byte {data[error.start]:#04x} at offset {error.start})",
            "allowed: UTF-8 text (re-save it as UTF-8)",
        ) from None
    if not text.strip():
        raise UnreadableFile(file, "is empty", "allowed: some text in every file")
    return text.removeprefix("\ufeff")
