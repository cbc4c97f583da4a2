"""Tables: the kind of each column (numeric, categorical, free text, ignored), the rows of a chunk
as numbers and category strings, and what one streaming pass learns of them (missing cells,
moments, category counts) for the model's preprocessing and the schema a prepare run logs.

Kinds are inferred from a table's first rows and can be set per column (`data.columns`); a column
that is not read says why. Memory is bounded however large the table: category counts stop
tracking new values past MAX_TRACKED_VALUES per column, and count them instead.
"""

from __future__ import annotations

import keyword
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from models.spec import TableColumn
from pipelines.data.source import position_hash

# What a missing category is stored (and served) as: a category of its own.
MISSING_CATEGORY = ""
# A value must occur this often in the train split to get its own index; rarer ones share the
# out-of-vocabulary buckets, which therefore learn what an unseen value means.
MIN_CATEGORY_COUNT = 2
# At most this many values per column get an index of their own, most frequent first; the rest
# are hashed into buckets.
MAX_VOCABULARY = 1000
MAX_HASH_BUCKETS = 256
# Distinct values counted per column and split; further new values are only counted as such.
MAX_TRACKED_VALUES = 20_000
# A text column whose values are all distinct over at least this many rows is an identifier
# (or free text, when its values run to several words).
MIN_ROWS_FOR_IDENTIFIER = 20
# Names of identifier columns: id, user_id, userId, index, rownames, pandas' unnamed index column.
IDENTIFIER_NAME = re.compile(r"^(?i:id)$|_(?i:id)$|[a-z](Id|ID)$|^(?i:index|rownames|row|Unnamed: \d+)$")
FREE_TEXT_WORDS = 4  # mean words per value from which a column reads as free text
EXAMPLES_SHOWN = 5
# A number's bins: quantiles of a sample of its train values (models.tabular encodes it in them),
# at most NUMBER_BINS and at least ROWS_PER_BIN train values in each: every bin's slope is learnt
# from the rows inside it, and a small table's bins would each fit a few dozen rows' noise.
NUMBER_BINS = 16
ROWS_PER_BIN = 100
SAMPLE_SIZE = 20_000
SAMPLE_SEED = 97
# A column of text cells of which at least this share reads as numbers is numeric: its other cells
# (a stray `oops`, `unknown`) are read as empty and reported, with their rows.
MIN_NUMBER_SHARE = 0.95
# What a number may be written with besides its digits: a currency sign and a percent sign around
# it (stripped, "29%" reads 29) and thousands separators ("3,802"; "3.802" or "3 802" where the
# decimal mark is a comma), grouped in threes, so that "0,5" is not read as 5.
NUMBER_SIGNS = "$€£¥%"
# pandas reads a column of True/False as numbers, 1 and 0; so are they where an empty cell keeps it text.
BOOLEANS = {"true": "1", "false": "0"}
# A column of dates is a number: days since this day (a time and a date: fractional days).
EPOCH = "1970-01-01"
DATE_CELLS_GUESSED = 20  # the first present cells whose formats are tried on the whole column
MAX_STRAY_CELLS = 2  # ... or at most this many cells, in a short table
STRAY_CELLS_SHOWN = 5


@dataclass(frozen=True)
class ColumnPlan:
    """How one column of the user's table is read: its kind, why, and the model input's name."""

    name: str
    kind: str  # numeric, categorical, text or ignore (data.columns' kinds)
    reason: str
    key: str = ""  # the model input that reads it; "" for a column that is not read
    date_format: str | None = None  # a numeric column of dates: how they are written (strptime)

    @property
    def read(self) -> bool:
        return self.kind in ("numeric", "categorical")


@dataclass
class StrayCells:
    """The cells of a numeric column that are not numbers (read as empty): how many, and the first
    few with their data row numbers."""

    count: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)

    def add(self, rows: np.ndarray, values: Sequence[str]) -> None:
        self.count += len(rows)
        room = STRAY_CELLS_SHOWN - len(self.first)
        self.first.extend(
            (int(row), str(value)) for row, value in zip(rows[:room], values[:room], strict=True)
        )

    def described(self) -> str:
        shown = ", ".join(f"{value!r} (data row {row})" for row, value in self.first)
        more = f" and {self.count - len(self.first):,} more" if self.count > len(self.first) else ""
        return f"{shown}{more}"


@dataclass
class TableLayout:
    """The columns of a table in storage order: numbers first, then categories; the others kept
    for the schema, with why they are not read. `stray` gathers, while the table is read, the
    cells of numeric columns that are not numbers."""

    columns: list[ColumnPlan]
    stray: dict[str, StrayCells] = field(default_factory=dict)

    @property
    def numeric(self) -> list[ColumnPlan]:
        return [column for column in self.columns if column.kind == "numeric"]

    @property
    def categorical(self) -> list[ColumnPlan]:
        return [column for column in self.columns if column.kind == "categorical"]

    @property
    def read(self) -> list[ColumnPlan]:
        """The columns the model reads, in storage order."""
        return self.numeric + self.categorical

    @property
    def unread(self) -> list[ColumnPlan]:
        return [column for column in self.columns if not column.read]


class InferredKind(NamedTuple):
    """A column's kind as its values show it, and why; a numeric column of dates has their format."""

    kind: str
    reason: str
    date_format: str | None = None


def plan_columns(
    head, candidates: Sequence[str], kinds: dict[str, str], chosen: bool, decimal: str = "."
) -> TableLayout:
    """Each candidate column's kind: as `kinds` sets it, else inferred from the rows of `head` (a
    pandas DataFrame). `chosen`: the user listed these columns, so none is ignored by inference."""
    plans = []
    for name in candidates:
        if name in kinds:
            kind, reason = kinds[name], "set by data.columns"
            written = date_format(head[name]) if kind == "numeric" else None
        else:
            kind, reason, written = infer_kind(head[name], decimal)
            if chosen and kind == "ignore":
                kind, reason = _plain_kind(head[name]), "listed in data.features"
        plans.append(ColumnPlan(name, kind, reason, date_format=written))
    keys = iter(input_keys([plan.name for plan in plans if plan.read]))
    plans = [
        ColumnPlan(plan.name, plan.kind, plan.reason, next(keys), plan.date_format) if plan.read else plan
        for plan in plans
    ]
    return TableLayout(plans)


def infer_kind(values, decimal: str = ".") -> InferredKind:
    """The kind of a column from its values (a pandas Series as read), why, in a few words, and for
    a column of dates how they are written."""
    import pandas as pd

    present = values.dropna()
    if present.empty:
        return InferredKind("ignore", "every cell is empty")
    distinct = int(present.nunique())
    if distinct == 1 and len(present) == len(values):
        return InferredKind("ignore", f"the same value in every row ({_shown(present.iloc[0])})")
    written = date_format(values)
    if written is not None:
        reason = f"dates (e.g. {_shown(present.iloc[0])}), read as days since {EPOCH}"
        return InferredKind("numeric", reason, written)
    if not pd.api.types.is_numeric_dtype(values):
        stray = ~as_numbers(present, decimal).notna()
        few = max(MAX_STRAY_CELLS, (1 - MIN_NUMBER_SHARE) * len(present))
        if stray.sum() <= few and present[~stray].nunique() > 1:
            count = int(stray.sum())
            but = f", but for {count} cell(s) in the first rows that are not" if count else ""
            return InferredKind(
                "numeric", f"numbers written as text (e.g. {_shown(present[~stray].iloc[0])}){but}"
            )
    if pd.api.types.is_numeric_dtype(values):
        numbers = present.to_numpy()
        counts_rows = (
            len(numbers) == len(values) >= MIN_ROWS_FOR_IDENTIFIER
            and np.all(np.mod(numbers, 1) == 0)
            and np.all(np.diff(numbers) == 1)
        )
        if counts_rows:
            return InferredKind("ignore", "counts the rows (an identifier)")
        if distinct == len(values) >= MIN_ROWS_FOR_IDENTIFIER and IDENTIFIER_NAME.search(str(values.name)):
            return InferredKind(
                "ignore", "an identifier (a different value in every row, and its name says so)"
            )
        return InferredKind("numeric", "numbers")
    words = float(present.astype(str).str.split().str.len().mean())
    if words >= FREE_TEXT_WORDS and distinct > len(present) // 2:
        return InferredKind("text", f"free text ({words:.0f} words per value on average)")
    if distinct == len(present) >= MIN_ROWS_FOR_IDENTIFIER:
        return InferredKind("ignore", "a different value in every row (an identifier)")
    return InferredKind("categorical", f"text with {distinct} distinct values")


def date_format(values) -> str | None:
    """How a column of text writes dates ("%Y-%m-%d", "%d/%m/%Y", ...), when at least
    MIN_NUMBER_SHARE of its present cells are dates in one format with a day, a month and a year;
    else None."""
    import warnings

    import pandas as pd
    from pandas.tseries.api import guess_datetime_format

    present = values.dropna()
    if pd.api.types.is_numeric_dtype(values) or present.empty:
        return None
    text = present.astype(str).str.strip()
    best, best_share = None, MIN_NUMBER_SHARE
    with warnings.catch_warnings():  # pandas' notes on the day-first guess: both are tried
        warnings.simplefilter("ignore")
        formats = {
            guess_datetime_format(cell, dayfirst=dayfirst)
            for cell in text.iloc[:DATE_CELLS_GUESSED]
            for dayfirst in (False, True)
        }
        for candidate in sorted(format for format in formats if format and _full_date(format)):
            share = float(as_dates(text, candidate).notna().mean())
            if share >= best_share:
                best, best_share = candidate, share
    return best


def _full_date(format: str) -> bool:
    """A day, a month and a year: "1-5" (a range) or "Jan" is no date."""
    month = any(directive in format for directive in ("%m", "%b", "%B"))
    return "%d" in format and month and ("%Y" in format or "%y" in format)


def as_dates(values, format: str):
    """A pandas Series of dates written in `format` as days since EPOCH (float), NaN where a cell is
    empty or not such a date. Dates with a UTC offset (`2021-09-20T17:47:07Z`, `...+02:00`) are
    read in UTC, and so is a date without one, so that a column may mix offsets."""
    import pandas as pd

    dates = pd.to_datetime(values.astype("string").str.strip(), format=format, errors="coerce", utc=True)
    return (dates - pd.Timestamp(EPOCH, tz="UTC")) / pd.Timedelta(days=1)


def as_numbers(values, decimal: str = ".", date_format: str | None = None):
    """A pandas Series of cells as numbers, NaN where a cell is not one (`decimal` its decimal mark;
    currency and percent signs and thousands separators allowed, NUMBER_SIGNS; dates written in
    `date_format` as days since EPOCH)."""
    import pandas as pd

    if date_format is not None:
        return as_dates(values, date_format)
    if pd.api.types.is_numeric_dtype(values):
        return values
    text = values.astype("string").str.strip()
    decimal_point = text.str.replace(decimal, ".", regex=False) if decimal != "." else text
    numbers = pd.to_numeric(decimal_point, errors="coerce").astype("Float64")
    written = numbers.isna() & text.notna()
    if written.any():
        numbers.loc[written] = _written_numbers(text[written], decimal).astype("Float64")
    return numbers


def _written_numbers(text, decimal: str):
    """Numbers written with signs and thousands separators ("-$3,802.5" -> -3802.5), True and False
    as 1 and 0; NaN for other text."""
    thousands = r"[.\s\u00a0\u202f]" if decimal == "," else ","
    grouped = re.compile(
        rf"^([+-]?)[{re.escape(NUMBER_SIGNS)}\s]*([+-]?)(\d{{1,3}}(?:{thousands}\d{{3}})+|\d+)"
        rf"((?:{re.escape(decimal)}\d+)?)[{re.escape(NUMBER_SIGNS)}\s]*$"
    )

    def plain(cell: str) -> str:
        if cell.lower() in BOOLEANS:
            return BOOLEANS[cell.lower()]
        match = grouped.match(cell)
        if match is None or (match[1] and match[2]):
            return cell
        whole = re.sub(r"\D", "", match[3])
        return f"{match[1] or match[2]}{whole}{match[4].replace(decimal, '.')}"

    def number(cell: str) -> float:
        try:
            return float(plain(cell))
        except ValueError:
            return math.nan

    # Each distinct cell once: a column of categories repeats a few values over many rows.
    return text.map({cell: number(cell) for cell in text.unique()})


def _plain_kind(values) -> str:
    import pandas as pd

    return "numeric" if pd.api.types.is_numeric_dtype(values) else "categorical"


def _shown(value) -> str:
    text = str(value)
    return repr(text if len(text) <= 30 else text[:27] + "...")


def input_keys(names: Sequence[str]) -> list[str]:
    """A model input name for each column: ASCII letters, digits and underscores, not starting
    with a digit, distinct (TensorFlow's signature arguments accept nothing else)."""
    keys: list[str] = []
    for name in names:
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        key = re.sub(r"[^A-Za-z0-9_]+", "_", ascii_name).strip("_") or "column"
        if key[0].isdigit() or keyword.iskeyword(key):
            key = f"c_{key}"
        base, number = key, 2
        while key in keys:
            key, number = f"{base}_{number}", number + 1
        keys.append(key)
    return keys


class TableRows:
    """A chunk of table rows: the numeric columns as float32 (NaN where empty) and the categorical
    columns as strings (MISSING_CATEGORY where empty), indexed together like one array."""

    def __init__(self, numbers: np.ndarray, categories: np.ndarray) -> None:
        self.numbers = numbers
        self.categories = categories

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, rows) -> TableRows:
        return TableRows(self.numbers[rows], self.categories[rows])


def table_rows(frame, layout: TableLayout) -> TableRows:
    """The rows of a pandas DataFrame (numeric columns already numbers, categories read as text)."""
    numeric = [column.name for column in layout.numeric]
    categorical = [column.name for column in layout.categorical]
    numbers = (
        frame[numeric].to_numpy(np.float32, na_value=np.nan)
        if numeric
        else np.zeros((len(frame), 0), np.float32)
    )
    categories = (
        frame[categorical].fillna(MISSING_CATEGORY).astype(str).to_numpy(object)
        if categorical
        else np.zeros((len(frame), 0), object)
    )
    return TableRows(numbers, categories)


class NumberSample:
    """A uniform sample of one numeric column's present values, at most SAMPLE_SIZE of them: those
    of the rows whose position hashes smallest, so that it does not depend on how the rows were
    chunked."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint64)
        self.values = np.zeros(0, np.float64)

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if len(self.keys) >= SAMPLE_SIZE:
            smaller = keys < self.keys.max()  # only rows that would enter the sample
            keys, values = keys[smaller], values[smaller]
        keys, values = np.concatenate([self.keys, keys]), np.concatenate([self.values, values])
        if len(keys) > SAMPLE_SIZE:
            kept = np.argpartition(keys, SAMPLE_SIZE - 1)[:SAMPLE_SIZE]
            keys, values = keys[kept], values[kept]
        self.keys, self.values = keys, values

    def bin_edges(self, bins: int) -> tuple[float, ...]:
        """The `bins` + 1 quantiles of the sample, ties merged: fewer for a column of few values,
        none for a constant one."""
        if not len(self.values):
            return ()
        # Distinct as float32, which the model computes in: no bin of zero width.
        edges = np.unique(np.quantile(self.values, np.linspace(0.0, 1.0, bins + 1)).astype(np.float32))
        return tuple(float(edge) for edge in edges) if len(edges) > 1 else ()


class CategoryCounts:
    """Occurrences of each value of one column, bounded: past MAX_TRACKED_VALUES distinct values,
    new ones are counted together in `untracked`."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.untracked = 0

    def add(self, values: np.ndarray) -> None:
        import pandas as pd

        # A hash table's count: about six times faster than sorting the strings (np.unique).
        counted = pd.Series(values, copy=False).value_counts(sort=False)
        for value, count in zip(counted.index.tolist(), counted.tolist(), strict=True):
            if value in self.counts:
                self.counts[value] += count
            elif len(self.counts) < MAX_TRACKED_VALUES:
                self.counts[value] = count
            else:
                self.untracked += count

    def merge(self, other: CategoryCounts) -> None:
        for value, count in other.counts.items():
            if value in self.counts or len(self.counts) < MAX_TRACKED_VALUES:
                self.counts[value] = self.counts.get(value, 0) + count
            else:
                self.untracked += count
        self.untracked += other.untracked


@dataclass
class TableStatistics:
    """What one pass over a split's rows learns: per numeric column the present cells' count,
    mean and squared deviations (merged chunk by chunk) and empty cells; per categorical column
    the values' counts."""

    numeric_columns: int
    categorical_columns: int
    present: np.ndarray = field(init=False)
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    missing: np.ndarray = field(init=False)
    categories: list[CategoryCounts] = field(init=False)
    samples: list[NumberSample] = field(init=False)
    rows: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.samples = [NumberSample() for _ in range(self.numeric_columns)]
        self.present = np.zeros(self.numeric_columns, np.int64)
        self.mean = np.zeros(self.numeric_columns, np.float64)
        self.m2 = np.zeros(self.numeric_columns, np.float64)
        self.missing = np.zeros(self.numeric_columns, np.int64)
        self.categories = [CategoryCounts() for _ in range(self.categorical_columns)]

    def add(self, rows: TableRows) -> None:
        numbers = rows.numbers.astype(np.float64)
        empty = np.isnan(numbers)
        count = (~empty).sum(axis=0)
        self.missing += empty.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(numbers, axis=0) / np.maximum(count, 1), 0.0)
            m2 = np.nansum((numbers - mean) ** 2, axis=0)
        total = self.present + count
        delta = mean - self.mean
        safe_total = np.maximum(total, 1)
        self.mean = self.mean + delta * count / safe_total
        self.m2 = self.m2 + m2 + delta**2 * self.present * count / safe_total
        self.present = total
        keys = position_hash(np.arange(self.rows, self.rows + len(rows), dtype=np.uint64), SAMPLE_SEED)
        self.rows += len(rows)
        for index, sample in enumerate(self.samples):
            present = ~empty[:, index]
            sample.add(keys[present], numbers[present, index])
        for index, counter in enumerate(self.categories):
            counter.add(rows.categories[:, index])

    def merge(self, other: TableStatistics) -> None:
        """Add another split's counts (for the schema; moments are the train split's own)."""
        self.missing += other.missing
        self.present += other.present
        for mine, theirs in zip(self.samples, other.samples, strict=True):
            mine.add(theirs.keys, theirs.values)
        for mine, theirs in zip(self.categories, other.categories, strict=True):
            mine.merge(theirs)


def number_bins(present: int) -> int:
    """Bins for a number with `present` train values: NUMBER_BINS, fewer when some would hold under
    ROWS_PER_BIN values, none below two."""
    bins = min(NUMBER_BINS, present // ROWS_PER_BIN)
    return bins if bins >= 2 else 0


def model_columns(layout: TableLayout, train: TableStatistics) -> tuple[TableColumn, ...]:
    """The columns as the model's preprocessing reads them, learnt on the train split."""
    columns = []
    for index, plan in enumerate(layout.numeric):
        present = int(train.present[index])
        variance = float(train.m2[index] / present) if present else 0.0
        columns.append(
            TableColumn(
                name=plan.name,
                key=plan.key,
                kind="numeric",
                date_format=plan.date_format,
                mean=float(train.mean[index]) if present else 0.0,
                # A constant column keeps its values: dividing by a zero spread would blow up new ones.
                variance=variance if variance > 0 else 1.0,
                missing=bool(train.missing[index]),
                bin_edges=train.samples[index].bin_edges(number_bins(present)),
            )
        )
    for index, plan in enumerate(layout.categorical):
        vocabulary, buckets = vocabulary_of(train.categories[index])
        columns.append(
            TableColumn(
                name=plan.name, key=plan.key, kind="categorical", vocabulary=vocabulary, hash_buckets=buckets
            )
        )
    return tuple(columns)


def vocabulary_of(counter: CategoryCounts) -> tuple[tuple[str, ...], int]:
    """The values that get an index of their own (at least MIN_CATEGORY_COUNT occurrences, the
    MAX_VOCABULARY most frequent; ties in sorted order), and the hash buckets the others share:
    one, or more when frequent values were cut by the cap (or never tracked)."""
    by_count = sorted(counter.counts, key=lambda value: -counter.counts[value])
    # At least one value of its own: a lookup needs a vocabulary (and all-rare values say little).
    frequent = [value for value in by_count if counter.counts[value] >= MIN_CATEGORY_COUNT] or by_count[:1]
    cut = len(frequent) - MAX_VOCABULARY + (1 if counter.untracked else 0)
    buckets = 1 if cut <= 0 else min(MAX_HASH_BUCKETS, max(8, cut // 4))
    return tuple(frequent[:MAX_VOCABULARY]), buckets


def schema(layout: TableLayout, totals: TableStatistics, columns: tuple[TableColumn, ...]) -> list[dict]:
    """One entry per column of the table (read or not), for the prepare run's `schema.json`:
    kind and why, the model input, empty cells, distinct values and examples over every split;
    what the model learnt of it on the train split."""
    learnt = {column.name: column for column in columns}
    numeric = {plan.name: index for index, plan in enumerate(layout.numeric)}
    categorical = {plan.name: index for index, plan in enumerate(layout.categorical)}
    entries = []
    for plan in layout.columns:
        entry: dict = {"column": plan.name, "kind": plan.kind, "why": plan.reason}
        if plan.name in numeric:
            index = numeric[plan.name]
            column = learnt[plan.name]
            sampled = totals.samples[index].values
            distinct = len(np.unique(sampled))
            entry |= {
                "input": plan.key,
                "missing": int(totals.missing[index]),
                # Counted in the sample of SAMPLE_SIZE values when the column holds more.
                "distinct": distinct
                if len(sampled) == totals.present[index]
                else f"{distinct} of {len(sampled)} sampled",
                "examples": [float(value) for value in dict.fromkeys(sampled.tolist())][:EXAMPLES_SHOWN],
                "train_mean": column.mean,
                "train_std": float(np.sqrt(column.variance)),
                "missing_indicator": column.missing,
                "bins": max(0, len(column.bin_edges) - 1),
            }
            stray = layout.stray.get(plan.name)
            if stray is not None:
                # Counted among the missing cells above, and named here.
                entry |= {
                    "not_numbers": stray.count,
                    "not_numbers_first": [{"data_row": row, "cell": cell} for row, cell in stray.first],
                }
        elif plan.name in categorical:
            counter = totals.categories[categorical[plan.name]]
            column = learnt[plan.name]
            distinct = len(counter.counts) - (MISSING_CATEGORY in counter.counts)
            entry |= {
                "input": plan.key,
                "missing": counter.counts.get(MISSING_CATEGORY, 0),
                "distinct": f"more than {distinct}" if counter.untracked else distinct,
                "examples": [value for value in counter.counts if value != MISSING_CATEGORY][:EXAMPLES_SHOWN],
                "vocabulary": len(column.vocabulary),
                "hash_buckets": column.hash_buckets,
            }
        entries.append(entry)
    return entries
