"""A CSV file as a source: a table of columns and a target column, a column of text and a target
column, or windows of a time series.

The file is read in chunks of rows. A first pass reads only the target (and `split`) column, to
know the task, the classes and the number of rows; the second streams the feature columns. Rows
go to splits by the `split` column when there is one, else by `assign_splits` (a seeded hash of
the row number): stable across reruns without holding the file; a row whose target is empty is
left out, and said so. A table's columns each have a kind (`pipelines.data.table`): numbers are
stored as float32 (NaN where empty), categories as strings, and the model learns the rest. A
forecast's series is one column, read whole; its windows are cut chunk by chunk. A text column
is stored as strings (the model tokenises them); an empty or non-UTF-8 cell is refused naming its row.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError, DataConfig
from pipelines.data.own_files import SPLIT_NAMES, check_enough, check_trainable, existing, targets
from pipelines.data.source import (
    SPLITS,
    TEST,
    TRAIN,
    UNLABELLED,
    VALIDATION_SPLIT_SEED,
    Chunk,
    SourceData,
    assign_splits,
    carve_validation,
    file_fingerprint,
    first_line,
    route,
)
from pipelines.data.table import (
    MIN_NUMBER_SHARE,
    STRAY_CELLS_SHOWN,
    StrayCells,
    TableLayout,
    as_numbers,
    infer_kind,
    plan_columns,
    table_rows,
)

CHUNK_ROWS = 65536
# A CSV column of this name assigns each row to a split.
SPLIT_COLUMN = "split"
# What Python's "surrogateescape" makes of a byte that is not UTF-8.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
# Field separators a file's first rows are tried with, in order of preference on a tie.
SNIFFED_DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 << 10
# A delimiter fits the first rows when at least this share of them has as many fields as the header.
SNIFF_CONSISTENCY = 0.9
# A number written with a decimal comma, as a spreadsheet in a European locale saves it.
_DECIMAL_COMMA_NUMBER = re.compile(r"^[+-]?\d+,\d+$")
# Within one chunk of a numeric column, at most this share of the cells may be other text (read
# as empty and reported): past it the column is not numeric, and the run stops naming a cell.
MAX_STRAY_SHARE = 0.5


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: field separator, text encoding, decimal mark, missing-value
    tokens; `sniffed` when the separator was inferred from the first rows."""

    delimiter: str
    encoding: str
    decimal: str
    na_values: tuple[str, ...]
    sniffed: bool = False

    @property
    def shown_delimiter(self) -> str:
        return {"\t": "tab"}.get(self.delimiter, self.delimiter)

    def reading(self) -> dict[str, str]:
        """What a prepare run logs of it."""
        return {"delimiter": self.shown_delimiter, "encoding": self.encoding, "decimal": self.decimal}


def read_csv(config: DataConfig) -> SourceData:
    """A table of columns and a target column; a column of text and a target column; or, with
    `data.task: forecast`, windows of a series."""

    path = existing(config.path, folder=False)
    dialect = csv_dialect(config, path)
    head = _read(path, dialect, nrows=CHUNK_ROWS)
    columns = ", ".join(map(str, head.columns))
    if config.target not in head.columns:
        one_column = len(head.columns) == 1  # likely split by another separator than the one sniffed
        separated = f" (read as {dialect.shown_delimiter!r}-separated)" if one_column else ""
        raise ConfigError(
            f"data.target: column {config.target!r} is not in {str(path)!r}{separated}; allowed: {columns}"
            + ("; or data.delimiter=<the file's field separator>" if one_column else "")
        )
    if config.task == "forecast":
        return _forecast(config, path, head, dialect)
    text_column = _text_column(config, path, head)
    layout = None if text_column else _table_layout(config, path, head, dialect)
    features = [text_column] if text_column else [column.name for column in layout.read]
    label_columns = [config.target] + ([SPLIT_COLUMN] if SPLIT_COLUMN in head.columns else [])
    labels = _read(path, dialect, usecols=label_columns)
    task, y, class_names, labelled, notes = _labels(labels[config.target], config, path)
    if SPLIT_COLUMN in labels.columns:
        codes = _codes_from_column(labels[SPLIT_COLUMN], path)
        codes[~labelled] = UNLABELLED
        check_trainable(int((codes == TRAIN).sum()), path)
        if not (codes == SPLITS.index("validation")).any():
            codes = carve_validation(codes, config.validation_fraction, VALIDATION_SPLIT_SEED)
    else:
        check_enough(int(labelled.sum()), path)
        codes = np.full(len(y), UNLABELLED, dtype=np.int8)
        codes[labelled] = assign_splits(
            int(labelled.sum()), config.validation_fraction, config.test_fraction, VALIDATION_SPLIT_SEED
        )
    del labels
    notes += _dialect_notes(dialect, head, layout)

    def chunks() -> Iterator[Chunk]:
        offset = 0
        if text_column:
            # A text column keeps its cells as written: "NA" is a word, an empty cell an empty text.
            options = {"dtype": {text_column: object}, "na_values": None}
        else:
            options = {"dtype": {column.name: str for column in layout.categorical}}
        for frame in _read(path, dialect, usecols=features, chunksize=CHUNK_ROWS, **options):
            rows = slice(offset, offset + len(frame))
            if text_column:
                x = _texts(frame[text_column], path, offset, labelled[rows])
            else:
                x = table_rows(_numeric(frame, layout, path, offset, dialect.decimal), layout)
            yield from route(codes[rows], x, y[rows])
            offset += len(frame)
        if layout is not None:
            notes.extend(
                f"column {name!r} is numeric; {stray.count:,} cell(s) in it that are not numbers are read as "
                f"empty: {stray.described()}"
                for name, stray in layout.stray.items()
            )

    return SourceData(
        name=config.name,
        version=file_fingerprint(path),
        source="csv",
        task=task,
        element_shape=() if text_column else (len(layout.numeric), len(layout.categorical)),
        stored_dtype="string" if text_column else "table",
        target_shape=tuple(y.shape[1:]),
        chunks=chunks,
        class_names=class_names,
        location=str(path),
        features=features,
        target_statistics=True,
        table=layout,
        notes=notes,
        reading=dialect.reading(),
    )


def _labels(
    column, config: DataConfig, path: Path
) -> tuple[str, np.ndarray, list[str], np.ndarray, list[str]]:
    """The task, a target per row (a placeholder where the cell is empty), the class names, which
    rows have a target, and a note when some do not: those rows are left out of every split."""
    described = f"column {config.target!r} of {str(path)!r}"
    labelled = column.notna().to_numpy()
    if not labelled.any():
        raise ConfigError(
            f"data.target: {described} is empty in every row; allowed: a column with a value in its rows"
        )
    labels = column[labelled]
    values = labels.to_numpy()
    # Every label a number written as text ("$3,802", "12,5" with data.decimal); the first thousand
    # tried first, so that a file of text labels is not parsed row by row.
    if (
        values.dtype.kind == "O"
        and config.task != "classification"
        and as_numbers(labels.iloc[:1000], config.decimal).notna().all()
    ):
        numbers = as_numbers(labels, config.decimal)
        if numbers.notna().all():
            values = numbers.to_numpy(np.float64)
    if values.dtype.kind == "f" and np.array_equal(values, np.round(values)):
        # Whole numbers that pandas read as floats because a cell is empty: the integers they are,
        # so that 0/1 with one empty target cell stays the classification it is without one.
        values = values.astype(np.int64)
    task, present, class_names = targets(values, config.task, described)
    if task == "classification" and len(class_names) < 2:
        raise ConfigError(
            f"data.target: {described} holds one value ({class_names[0]!r}) in every row that has one; "
            "allowed: a column with at least two classes to tell apart"
        )
    y = np.zeros((len(labelled), *present.shape[1:]), dtype=present.dtype)
    y[labelled] = present
    notes = []
    if config.task == "auto" and task == "classification" and values.dtype.kind in "iu":
        notes.append(
            f"column {config.target!r} holds {len(class_names)} whole numbers "
            f"({', '.join(class_names[:5])}{', ...' if len(class_names) > 5 else ''}), read as classes; "
            "data.task=regression predicts it as a number"
        )
    if not labelled.all():
        empty = int((~labelled).sum())
        notes.append(
            f"left out {empty:,} of {len(labelled):,} rows whose target {config.target!r} is empty "
            f"(the first is data row {int(np.flatnonzero(~labelled)[0]) + 1})"
        )
    return task, y, class_names, labelled, notes


def csv_dialect(config: DataConfig, path: Path) -> CsvDialect:
    """How the file is written: `data.delimiter`, or the separator its first rows are consistent
    with; the encoding, decimal mark and missing-value tokens of the data config."""
    tokens = tuple(config.na_values)
    if config.delimiter is not None:
        return CsvDialect(config.delimiter, config.encoding, config.decimal, tokens)
    delimiter = _sniffed_delimiter(path, config.encoding)
    return CsvDialect(delimiter, config.encoding, config.decimal, tokens, sniffed=True)


def _sniffed_delimiter(path: Path, encoding: str) -> str:
    """The separator that splits the header into the most fields while most of the first rows have
    as many; a comma when none splits the header (a one-column file)."""
    with open(path, "rb") as file:
        sample = file.read(SNIFF_BYTES)
    lines = sample.decode(encoding, errors="replace").splitlines()
    if len(sample) == SNIFF_BYTES:
        lines = lines[:-1]  # cut short by the sample
    best, best_fields = ",", 1
    for delimiter in SNIFFED_DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        if not counts or counts[0] <= best_fields:
            continue
        if sum(count == counts[0] for count in counts) >= SNIFF_CONSISTENCY * len(counts):
            best, best_fields = delimiter, counts[0]
    return best


def _dialect_notes(dialect: CsvDialect, head, layout: TableLayout | None) -> list[str]:
    """What a user should know of how the file was read: a separator other than the comma, and
    text columns that would be numbers with a decimal comma."""
    notes = []
    if dialect.sniffed and dialect.delimiter != ",":
        notes.append(
            f"read as {dialect.shown_delimiter!r}-separated (from its first rows; data.delimiter sets it)"
        )
    if dialect.decimal == "." and layout is not None:
        for column in layout.columns:
            if column.kind == "numeric":
                continue
            present = head[column.name].dropna().astype(str).str.strip()
            if len(present) and present.str.fullmatch(_DECIMAL_COMMA_NUMBER).mean() >= MIN_NUMBER_SHARE:
                notes.append(
                    f"column {column.name!r} holds numbers with a decimal comma (e.g. {present.iloc[0]!r}), "
                    f"read as text ({column.kind}); data.decimal=',' reads them as numbers"
                )
    return notes


def _read(path: Path, dialect: CsvDialect, **options):
    """pandas' read_csv in the file's dialect, its parse errors said as the user's problem."""
    import pandas as pd

    settings = {
        "sep": dialect.delimiter,
        "encoding": dialect.encoding,
        "decimal": dialect.decimal,
        # Only the tokens of data.na_values are empty cells: pandas' own list would add "None".
        "na_values": list(dialect.na_values),
        "keep_default_na": False,
        # Spaces after a delimiter are layout (", <=50K"), not part of the value.
        "skipinitialspace": True,
    }
    try:
        read = pd.read_csv(path, **(settings | options))
        return _said(read, path, dialect) if "chunksize" in options else read
    except UnicodeError:
        raise _undecodable(path, dialect) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ConfigError(
            f"data.path: {str(path)!r} is not a readable CSV file ({first_line(error)}); "
            f"allowed: a file of {dialect.shown_delimiter!r}-separated fields with a header row "
            "(data.delimiter sets the separator)"
        ) from None


def _said(chunks, path: Path, dialect: CsvDialect):
    """pandas' chunks of a file, a decoding or parse error met deep in it said as `_read` says one."""
    import pandas as pd

    with chunks:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except UnicodeError:
                raise _undecodable(path, dialect) from None
            except pd.errors.ParserError as error:
                raise ConfigError(
                    f"data.path: {str(path)!r} is not a readable CSV file ({first_line(error)}); allowed: "
                    f"{dialect.shown_delimiter!r}-separated fields, as many in every row as in the header"
                ) from None
            yield chunk


def _undecodable(path: Path, dialect: CsvDialect) -> ConfigError:
    """The refusal of a file that is not in its configured encoding; for UTF-8, naming the first row
    and column that is not, and the option that reads another encoding."""
    allowed = (
        "allowed: data.encoding=<the file's encoding> (cp1252 or latin-1 for most files a spreadsheet "
        "saved in Western Europe), or re-save it as UTF-8"
    )
    if dialect.encoding != "utf-8":
        return ConfigError(f"data.encoding: {str(path)!r} is not {dialect.encoding} text; {allowed}")
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as file:
        reader = csv.reader(file, delimiter=dialect.delimiter)
        header = next(reader, [])
        for row, cells in enumerate(itertools.chain([header], reader)):
            for index, cell in enumerate(cells):
                escaped = _ESCAPED_BYTE.search(cell)
                if escaped is None:
                    continue
                where = "the header row" if row == 0 else f"data row {row}"
                column = header[index] if row and index < len(header) else f"number {index + 1}"
                return ConfigError(
                    f"data.encoding: column {column!r} of {str(path)!r} is not UTF-8 in {where} (byte "
                    f"{ord(escaped.group()) - 0xDC00:#04x}); {allowed}"
                )
    return ConfigError(f"data.encoding: {str(path)!r} is not UTF-8; {allowed}")


def _texts(column, path: Path, first_row: int, labelled: np.ndarray) -> np.ndarray:
    """A chunk's text cells as strings, refusing an empty one with its row (in a row that has a
    target: the others are left out)."""
    texts = column.to_numpy(dtype=object)
    for row, text in enumerate(texts):
        if labelled[row] and (not isinstance(text, str) or not text.strip()):
            raise ConfigError(
                f"data.text_column: column {column.name!r} of {str(path)!r} has an empty cell in data row "
                f"{first_row + row + 1}; allowed: some text in every row"
            )
    return texts


def _text_column(config: DataConfig, path: Path, head) -> str | None:
    """The column of text to read: `data.text_column`; under `auto` the one non-numeric column
    besides the target and the split, if there is exactly one; unset, that column only when no
    other is beside it and it reads as free text. None reads a table."""
    import pandas as pd

    columns = [str(column) for column in head.columns]
    if config.text_column not in (None, "auto"):
        if config.text_column not in columns:
            raise ConfigError(
                f"data.text_column: column {config.text_column!r} is not in {str(path)!r}; "
                f"allowed: {', '.join(columns)}"
            )
        return config.text_column
    if config.features is not None:
        return None
    others = [column for column in columns if column not in (config.target, SPLIT_COLUMN)]
    texts = [column for column in others if not pd.api.types.is_numeric_dtype(head[column])]
    if config.text_column == "auto" and len(texts) > 1:
        raise ConfigError(
            f"data.text_column: auto finds {len(texts)} text columns in {str(path)!r} "
            f"({', '.join(texts)}); allowed: data.text_column=<one of them>"
        )
    if len(texts) == 1 and config.text_column == "auto":
        return texts[0]
    if len(texts) == 1 and others == texts and infer_kind(head[texts[0]])[0] == "text":
        return texts[0]
    return None


def _numeric(frame, layout: TableLayout, path: Path, first_row: int, decimal: str):
    """The chunk with its numeric columns as numbers (NaN where empty). A cell that is other text is
    read as empty and gathered in `layout.stray`; a chunk where most of a column's cells are text
    stops the run, naming the first such cell."""
    import pandas as pd

    for column in layout.numeric:
        values = frame[column.name]
        if pd.api.types.is_numeric_dtype(values):
            continue
        numbers = as_numbers(values, decimal, column.date_format)
        bad = (numbers.isna() & values.notna()).to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            if len(rows) > MAX_STRAY_SHARE * int(values.notna().sum()):
                raise ConfigError(
                    f"data.columns: column {column.name!r} of {str(path)!r} is numeric ({column.reason}) but "
                    f"holds {values.iloc[rows[0]]!r} in data row {first_row + rows[0] + 1}, and "
                    f"{len(rows):,} of its {len(values):,} cells from there are not numbers; allowed: "
                    "numbers, empty cells (data.na_values) and a few other cells, or "
                    f"data.columns.{column.name}=categorical"
                )
            layout.stray.setdefault(column.name, StrayCells()).add(
                first_row + rows + 1, values.iloc[rows[:STRAY_CELLS_SHOWN]].tolist()
            )
        frame[column.name] = numbers
    return frame


def _codes_from_column(column, path: Path) -> np.ndarray:
    """Split codes from the CSV's `split` column (train, validation or val, test)."""
    names = column.astype(str).str.strip().str.lower()
    unknown = sorted(set(names) - set(SPLIT_NAMES))
    if unknown:
        raise ConfigError(
            f"data.path: column {SPLIT_COLUMN!r} of {str(path)!r} holds {unknown[0]!r}; "
            f"allowed: {', '.join(SPLIT_NAMES)}"
        )
    codes = names.map({name: SPLITS.index(split) for name, split in SPLIT_NAMES.items()}).to_numpy(np.int8)
    absent = [split for split, code in (("train", TRAIN), ("test", TEST)) if not (codes == code).any()]
    if absent:
        raise ConfigError(
            f"data.path: column {SPLIT_COLUMN!r} of {str(path)!r} names no {absent[0]} row; "
            "allowed: train and test rows (validation is carved from train when absent)"
        )
    return codes


def _table_layout(config: DataConfig, path: Path, head, dialect: CsvDialect) -> TableLayout:
    """The kind of every column besides the target and the split: as `data.columns` sets it, else
    inferred from the file's first rows; only `data.features` when given. Refuses names that are not
    columns, and a table with no column to read."""
    described = f"{str(path)!r}"
    columns = [str(column) for column in head.columns]
    kinds = dict(config.columns or {})
    for name in kinds:
        if name not in columns:
            raise ConfigError(
                f"data.columns: {name!r} is not a column of {described}; allowed: {', '.join(columns)}"
            )
        if name in (config.target, SPLIT_COLUMN):
            role = "the target" if name == config.target else "the split column"
            raise ConfigError(
                f"data.columns: {name!r} is {role} of {described}, not an input; allowed: the others"
            )
    if config.features is None:
        candidates = [column for column in columns if column not in (config.target, SPLIT_COLUMN)]
    else:
        missing = [column for column in config.features if column not in columns]
        if missing:
            raise ConfigError(
                f"data.features: {', '.join(map(repr, missing))} not in {described}; "
                f"allowed: {', '.join(columns)}"
            )
        if config.target in config.features:
            raise ConfigError(
                f"data.features: {config.target!r} is the target column; allowed: the other columns"
            )
        candidates = list(config.features)
    layout = plan_columns(
        head, candidates, kinds, chosen=config.features is not None, decimal=dialect.decimal
    )
    if not layout.read:
        why = (
            "; ".join(f"{column.name}: {column.reason}" for column in layout.unread)
            or "it has no other column"
        )
        raise ConfigError(
            f"data.columns: {described} has no column to read besides the target {config.target!r} ({why}); "
            "allowed: at least one numeric or categorical column (data.columns.<name>=numeric or categorical)"
        )
    return layout


def _forecast(config: DataConfig, path: Path, head, dialect: CsvDialect) -> SourceData:
    """Windows of `window` past values predicting the `horizon` next ones, split in time order.

    The series is cut in three stretches (train, validation, test: the last `test_fraction` of
    it); a window belongs to the stretch its targets fall in, so no target is shared across
    splits, while its past values may reach back before the cut, as they would in real use.
    """
    import pandas as pd

    described = f"{str(path)!r}"
    if config.time_column is not None and config.time_column not in head.columns:
        raise ConfigError(
            f"data.time_column: column {config.time_column!r} is not in {described}; "
            f"allowed: {', '.join(map(str, head.columns))}"
        )
    wanted = [config.target] + (
        [config.time_column] if config.time_column not in (None, config.target) else []
    )
    frame = _read(path, dialect, usecols=wanted)
    if config.time_column is not None:
        frame = frame.sort_values(config.time_column, kind="stable")
    column = frame[config.target]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ConfigError(
            f"data.target: column {config.target!r} of {described} is not numeric (e.g. "
            f"{column.iloc[0]!r}); allowed for data.task forecast: a column of numbers"
        )
    empty = int(column.isna().sum())
    if empty:
        raise ConfigError(
            f"data.target: column {config.target!r} of {described} has {empty} empty cell(s); "
            "allowed: a value in every row"
        )
    series = column.to_numpy(np.float32)
    del frame
    window, horizon = config.window, config.horizon
    bounds = _forecast_bounds(len(series), config)
    if bounds is None:
        needed = next(n for n in itertools.count(window + horizon) if _forecast_bounds(n, config))
        raise ConfigError(
            f"data.window: {window} (with data.horizon {horizon}) needs at least {needed} rows in "
            f"{described}, which has {len(series)}; allowed: a smaller data.window or a longer series"
        )
    train_end, validation_end = bounds
    stretches = {
        "train": (window, train_end - horizon),
        "validation": (train_end, validation_end - horizon),
        "test": (validation_end, len(series) - horizon),
    }
    pasts = np.lib.stride_tricks.sliding_window_view(series, window)
    futures = np.lib.stride_tricks.sliding_window_view(series, horizon)

    def chunks() -> Iterator[Chunk]:
        # One window per target start t in [first, last]: the `window` values before t predict
        # the `horizon` values from t on.
        for split, (first, last) in stretches.items():
            for start in range(first, last + 1, CHUNK_ROWS):
                starts = np.arange(start, min(last, start + CHUNK_ROWS - 1) + 1)
                yield split, pasts[starts - window][..., None], futures[starts]

    history = series[:train_end]
    mean, std = float(history.mean()), float(history.std())
    return SourceData(
        name=config.name,
        version=file_fingerprint(path),
        source="csv",
        task="regression",
        element_shape=(window, 1),
        stored_dtype="float32",
        target_shape=(horizon,),
        chunks=chunks,
        location=str(path),
        features=[config.target],
        forecast=True,
        spec_statistics={
            "input_mean": (mean,),
            "input_variance": (std**2 if std > 0 else 1.0,),
            "target_mean": mean,
            "target_scale": std if std > 0 else 1.0,
        },
    )


def _forecast_bounds(length: int, config: DataConfig) -> tuple[int, int] | None:
    """Where the train and validation stretches of a series end, or None when one is too short."""
    test_points = max(config.horizon, round(config.test_fraction * length))
    validation_end = length - test_points
    validation_points = max(config.horizon, round(config.validation_fraction * validation_end))
    train_end = validation_end - validation_points
    if train_end - config.horizon < config.window:  # not even one training window
        return None
    return train_end, validation_end
