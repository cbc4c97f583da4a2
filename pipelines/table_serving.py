"""The logged model of a table, as MLflow loads and serves it: raw rows in (a pandas DataFrame with
the file's column names, empty cells and unseen categories included), one row of predictions out
with the classes named as the data names them.

MLflow logs this file itself ("models from code"): it imports nothing of deeparch, so a logged
table model loads wherever keras, pandas and mlflow are installed; what it knows of the table
(columns, classes, task) comes in its `model_config`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.types.schema import AnyType, ColSpec, Schema

PREDICTION_COLUMN = "prediction"
# Signs a number may be written with, stripped as the training file's were (pipelines/data/table.py).
NUMBER_SIGNS = "$€£¥%"
DATE_EPOCH = "1970-01-01"  # a date is read as the days since this one (pipelines/data/table.py)


def probability_column(class_name: str) -> str:
    """The output column holding one class's probability."""
    return f"probability({class_name})"


class TableModel(mlflow.pyfunc.PythonModel):
    """A table's Keras model behind MLflow's `predict(DataFrame)`: each column converted as the
    prepared data stores it (numbers as float32, NaN where empty; categories as text, "" where
    empty), then the predicted class (or value) and each class's probability."""

    def load_context(self, context) -> None:
        import keras

        self.configure(context.model_config)
        self.keras_model = keras.saving.load_model(context.artifacts["keras_model"], compile=False)

    def configure(self, config: dict[str, Any], keras_model=None) -> TableModel:
        """Set what the model knows of the table: `columns` (name, key, kind each), `class_names`,
        `task`, and the cells its file held for an empty one (`missing`) and its `decimal` mark."""
        self.columns = config["columns"]
        self.class_names = config["class_names"]
        self.task = config["task"]
        # Models logged before these two were recorded: only an empty cell is empty, "." the mark.
        self.missing = frozenset(config.get("missing", ("",)))
        self.decimal = config.get("decimal", ".")
        if keras_model is not None:
            self.keras_model = keras_model
        return self

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Predictions for raw rows (a DataFrame, or anything `pandas.DataFrame` takes)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        inputs = self.model_inputs(frame)
        outputs = np.asarray(self.keras_model.predict(inputs, batch_size=1024, verbose=0))
        if self.task != "classification":
            return pd.DataFrame({PREDICTION_COLUMN: outputs.reshape(len(frame), -1)[:, 0]}, index=frame.index)
        predicted = [self.class_names[index] for index in outputs.argmax(axis=-1)]
        columns = {PREDICTION_COLUMN: predicted}
        columns |= {
            probability_column(name): outputs[:, index] for index, name in enumerate(self.class_names)
        }
        return pd.DataFrame(columns, index=frame.index)

    def model_inputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each column of raw rows as the model input it feeds; a column that is missing, or a
        number column holding text, is refused naming it."""
        absent = [column["name"] for column in self.columns if column["name"] not in frame.columns]
        if absent:
            raise ValueError(
                f"the rows have no column {', '.join(map(repr, absent))}; "
                f"expected: {', '.join(column['name'] for column in self.columns)}"
            )
        inputs = {}
        for column in self.columns:
            values = frame[column["name"]]
            if column.get("date_format"):
                inputs[column["key"]] = self.dates(values, column["name"], column["date_format"])
            elif column["kind"] == "numeric":
                inputs[column["key"]] = self.numbers(values, column["name"])
            else:
                inputs[column["key"]] = np.array([self.category(value) for value in values], dtype=object)
        return inputs

    def numbers(self, values: pd.Series, name: str) -> np.ndarray:
        """A number column as float32, NaN where a cell is empty or one of the file's `missing`
        tokens ("NA", "?"); a cell that is neither a number nor empty is refused, naming the column."""
        if pd.api.types.is_numeric_dtype(values):
            return values.to_numpy(np.float32, na_value=np.nan)
        text = self.present_text(values)
        decimal_point = text.str.replace(self.decimal, ".", regex=False) if self.decimal != "." else text
        numbers = pd.to_numeric(decimal_point, errors="coerce").astype("Float64")
        written = numbers.isna() & text.notna()
        if written.any():
            plain = text[written].map(self.plain_number)
            numbers.loc[written] = pd.to_numeric(plain, errors="coerce").astype("Float64")
        bad = numbers.isna() & text.notna()
        if bad.any():
            raise ValueError(
                f"column {name!r} holds {values[bad].iloc[0]!r}; expected: a number or an empty cell"
            )
        return numbers.to_numpy(np.float32, na_value=np.nan)

    def dates(self, values: pd.Series, name: str, format: str) -> np.ndarray:
        """A column of dates written in `format` as the days since 1970-01-01 the model reads, NaN
        where empty; a cell that is neither such a date nor empty is refused, naming the column."""
        text = self.present_text(values)
        dates = pd.to_datetime(text, format=format, errors="coerce", utc=True)  # as prepare reads them
        bad = dates.isna() & text.notna()
        if bad.any():
            example = pd.Timestamp("2020-01-31", tz="UTC").strftime(format)
            raise ValueError(
                f"column {name!r} holds {values[bad].iloc[0]!r}; expected: a date written as "
                f"{example!r} ({format}) or an empty cell"
            )
        days = (dates - pd.Timestamp(DATE_EPOCH, tz="UTC")) / pd.Timedelta(days=1)
        return days.to_numpy(np.float32, na_value=np.nan)

    def present_text(self, values: pd.Series) -> pd.Series:
        """Cells as text without surrounding spaces, NA where empty or one of the file's `missing`
        tokens."""
        text = values.astype("string").str.strip()
        return text.mask(text.isin(self.missing) | (text == ""))

    def plain_number(self, cell: str) -> str:
        """A number written with signs and thousands separators ("-$3,802.5", "29%") as a plain one
        ("-3802.5"), True and False as 1 and 0; other text unchanged. As `pipelines.data.table`
        reads the training file."""
        if cell.lower() in ("true", "false"):  # as pandas reads a column of them: 1 and 0
            return "1" if cell.lower() == "true" else "0"
        thousands = r"[.\s\u00a0\u202f]" if self.decimal == "," else ","
        signs = re.escape(NUMBER_SIGNS)
        match = re.match(
            rf"^([+-]?)[{signs}\s]*([+-]?)(\d{{1,3}}(?:{thousands}\d{{3}})+|\d+)"
            rf"((?:{re.escape(self.decimal)}\d+)?)[{signs}\s]*$",
            cell,
        )
        if match is None or (match[1] and match[2]):
            return cell
        whole = re.sub(r"\D", "", match[3])
        return f"{match[1] or match[2]}{whole}{match[4].replace(self.decimal, '.')}"

    def category(self, value) -> str:
        """A cell as the category text the prepared data holds: "" where empty or one of the file's
        `missing` tokens, without the spaces a CSV puts after its delimiter (", Private"), and 3,
        not 3.0, for a whole number that pandas read as a float beside empty cells."""
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        text = str(value).lstrip(" ")
        return "" if text in self.missing else text

    def input_schema(self) -> Schema:
        """The signature's inputs: every column by name, typed `Any`. MLflow's own check would refuse
        what a DataFrame read from a CSV holds (int64 in a double column: "Can not safely convert
        int64 to float64"; numbers or booleans in a string column); `model_inputs` converts each
        column as the model reads it and refuses one that does not fit, naming it."""
        return Schema([ColSpec(AnyType(), column["name"]) for column in self.columns])


mlflow.models.set_model(TableModel())
