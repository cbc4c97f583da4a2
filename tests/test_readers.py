"""Files as people save them: a CSV's delimiter sniffed or set, another encoding, the decimal comma,
missing-value tokens and stray text in a numeric column; folders with an unreadable file skipped
when asked. Each case goes through the CLI and checks what was read and what the prepare run logged."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from .conftest import all_runs
from .test_own_data import _image_folder

QUICK = ["train.epochs=1", "train.batch_size=16"]


def _prepare_run(uri: str) -> mlflow.entities.Run:
    (run,) = [run for run in all_runs(uri) if run.data.tags["stage"] == "prepare"]
    return run


def _artifact(run: mlflow.entities.Run, name: str) -> dict:
    return json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=name)).read_text()
    )


def _rows_read(run: mlflow.entities.Run) -> int:
    return sum(int(run.data.params[f"dataset.size.{split}"]) for split in ("train", "validation", "test"))


def _shop_table(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small shop table: a price with cents, a count, a category with accented values, a label."""
    rng = np.random.default_rng(seed)
    price = np.round(rng.uniform(1, 100, rows), 2)
    return pd.DataFrame(
        {
            "price": price,
            "items": rng.integers(1, 9, rows),
            "shop": rng.choice(["Café Müller", "Bäckerei", "Crêperie"], rows),
            "label": np.where(price > 50, "dear", "cheap"),
        }
    )


def _european_csv(path: Path, table: pd.DataFrame, delimiter: str = ";", encoding: str = "utf-8") -> Path:
    """The table as a spreadsheet in a European locale saves it: `delimiter`, decimal comma."""
    table.to_csv(path, sep=delimiter, decimal=",", index=False, encoding=encoding)
    return path


# make test's time budget: the readers' other tests prepare their files, and tables run all four
# stages in test_tables.py.
@pytest.mark.slow
def test_semicolon_csv_with_decimal_comma_is_sniffed_read_as_numbers_and_trains(store, cli, tmp_path):
    table = _shop_table()
    path = _european_csv(tmp_path / "shop.csv", table)
    status, out, error = cli(
        "run", "-e", "mlp-tabular", f"data.path={path}", "data.target=label", "data.decimal=,", *QUICK
    )
    assert status == 0, error
    assert "read as ';'-separated" in out
    prepare = _prepare_run(store)
    params = prepare.data.params
    assert (params["dataset.delimiter"], params["dataset.decimal"], params["dataset.encoding"]) == (
        ";",
        ",",
        "utf-8",
    )
    assert _rows_read(prepare) == len(table)
    columns = {entry["column"]: entry for entry in _artifact(prepare, "schema.json")["columns"]}
    assert columns["price"]["kind"] == "numeric" and columns["items"]["kind"] == "numeric"
    assert columns["shop"]["kind"] == "categorical"
    assert set(columns["shop"]["examples"]) == {"Café Müller", "Bäckerei", "Crêperie"}
    # The cents came through: numbers with a decimal comma, not the integers before it.
    assert min(columns["price"]["examples"]) >= 1 and any(value % 1 for value in columns["price"]["examples"])


def test_without_the_decimal_option_a_decimal_comma_column_is_named_with_the_fix(store, cli, tmp_path):
    path = _european_csv(tmp_path / "shop.csv", _shop_table())
    status, out, error = cli("prepare", "-e", "mlp-tabular", f"data.path={path}", "data.target=label")
    assert status == 0, error
    assert "column 'price' holds numbers with a decimal comma" in out and "data.decimal=','" in out


def test_tab_separated_file_is_sniffed_and_a_pipe_can_be_named(store, cli, tmp_path):
    table = _shop_table()
    tabbed = tmp_path / "shop.tsv"
    table.to_csv(tabbed, sep="\t", index=False)
    assert cli("prepare", "-e", "mlp-tabular", f"data.path={tabbed}", "data.target=label")[0] == 0
    prepare = _prepare_run(store)
    assert prepare.data.params["dataset.delimiter"] == "tab"
    assert _rows_read(prepare) == len(table)
    piped = tmp_path / "shop.psv"
    table.to_csv(piped, sep="|", index=False)
    status, _, error = cli(
        "prepare", "-e", "mlp-tabular", f"data.path={piped}", "data.target=label", "data.delimiter=pipe"
    )
    assert status == 0, error


def test_latin1_file_is_refused_naming_data_encoding_and_read_with_it(store, cli, tmp_path):
    table = _shop_table()
    path = _european_csv(tmp_path / "shop.csv", table, encoding="cp1252")
    overrides = [f"data.path={path}", "data.target=label", "data.decimal=,"]
    status, _, error = cli("prepare", "-e", "mlp-tabular", *overrides)
    assert status == 2
    assert "data.encoding" in error and "column 'shop'" in error and "not UTF-8" in error
    assert "Traceback" not in error and all_runs(store) == []
    assert cli("prepare", "-e", "mlp-tabular", *overrides, "data.encoding=cp1252")[0] == 0
    prepare = _prepare_run(store)
    assert prepare.data.params["dataset.encoding"] == "cp1252"
    columns = {entry["column"]: entry for entry in _artifact(prepare, "schema.json")["columns"]}
    assert set(columns["shop"]["examples"]) == {"Café Müller", "Bäckerei", "Crêperie"}


def test_missing_tokens_and_stray_text_in_a_numeric_column_are_empty_cells_reported_with_rows(
    store, cli, tmp_path
):
    table = _shop_table(rows=200)
    items = table["items"].astype(object)
    for row, token in ((3, "?"), (10, "n/a"), (11, "-"), (12, "NA"), (20, "")):
        items[row] = token
    items[40] = "oops"  # data row 41
    items[150] = "lots"  # data row 151
    table["items"] = items
    path = tmp_path / "shop.csv"
    table.to_csv(path, index=False)
    status, out, error = cli("prepare", "-e", "mlp-tabular", f"data.path={path}", "data.target=label")
    assert status == 0, error
    assert "column 'items' is numeric; 2 cell(s) in it that are not numbers are read as empty" in out
    assert "'oops' (data row 41), 'lots' (data row 151)" in out
    prepare = _prepare_run(store)
    assert _rows_read(prepare) == len(table)
    items_entry = next(e for e in _artifact(prepare, "schema.json")["columns"] if e["column"] == "items")
    assert items_entry["kind"] == "numeric" and items_entry["missing_indicator"] is True
    assert items_entry["missing"] == 7  # five tokens and two stray cells
    assert items_entry["not_numbers"] == 2
    assert items_entry["not_numbers_first"] == [
        {"data_row": 41, "cell": "oops"},
        {"data_row": 151, "cell": "lots"},
    ]


def test_numbers_written_with_currency_percent_and_thousands_signs_are_numbers(store, cli, tmp_path):
    """ "$1,234.50", "15%", "12,345,678": numbers, in the features and in a regression target;
    "0,5" in a file whose decimal mark is a point is not read as 5."""
    table = _shop_table(rows=120)
    table["price"] = [f"${value:,.2f}" for value in table["price"] * 100]
    table["discount"] = [f"{value}%" for value in table["items"] * 5]
    table["visitors"] = [f"{value:,}" for value in table["items"] * 123_457]
    table["ratio"] = [f"{value},{value + 1}" for value in table["items"]]  # "3,4": a decimal comma
    table["revenue"] = [f"€{1_000 + 37 * row:,}" for row in range(len(table))]
    path = tmp_path / "shop.csv"
    table.drop(columns="label").to_csv(path, index=False)
    status, out, error = cli("prepare", "-e", "mlp-tabular", f"data.path={path}", "data.target=revenue")
    assert status == 0, error
    prepare = _prepare_run(store)
    assert prepare.data.params["dataset.task"] == "regression"
    columns = {entry["column"]: entry for entry in _artifact(prepare, "schema.json")["columns"]}
    assert columns["price"]["kind"] == "numeric"
    assert columns["price"]["why"].startswith("numbers written as text (e.g. '$")
    assert min(columns["price"]["examples"]) >= 100 and max(columns["price"]["examples"]) >= 1_000
    assert set(columns["discount"]["examples"]) <= {5 * items for items in range(1, 9)}
    assert columns["visitors"]["kind"] == "numeric" and max(columns["visitors"]["examples"]) >= 123_457
    assert columns["ratio"]["kind"] == "categorical"
    assert "column 'ratio' holds numbers with a decimal comma" in out


def test_dates_are_days_since_1970_in_training_and_in_the_served_rows(store, cli, tmp_path):
    """A column of dates ("2021-03-05", or "25/12/2020" where the day comes first) is a number of
    days, not a category with a value per day (or an identifier when every date differs)."""
    table = _shop_table(rows=120)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(120) * 3, unit="D")
    table["opened"] = days.strftime("%d/%m/%Y")  # every date distinct, days past the 12th
    table["sold"] = (days[::-1] - pd.to_timedelta(np.arange(120) % 4, unit="D")).strftime("%Y-%m-%d")
    table.loc[5, "sold"] = None
    # Times in UTC as surveys and logs write them, one with another offset: read in UTC.
    visited = days + pd.to_timedelta(np.arange(120) * 37, unit="min")
    table["visited"] = visited.strftime("%Y-%m-%dT%H:%M:%SZ")
    table.loc[1, "visited"] = "2020-01-04T02:37:00+02:00"  # 00:37 UTC
    path = tmp_path / "shop.csv"
    table.to_csv(path, index=False)
    status, out, error = cli("run", "-e", "mlp-tabular", f"data.path={path}", "data.target=label", *QUICK)
    assert status == 0, error
    prepare = _prepare_run(store)
    columns = {entry["column"]: entry for entry in _artifact(prepare, "schema.json")["columns"]}
    assert columns["opened"]["kind"] == "numeric"
    assert columns["opened"]["why"] == "dates (e.g. '01/01/2020'), read as days since 1970-01-01"
    assert columns["opened"]["examples"][:2] == [18262.0, 18265.0]  # 2020-01-01 and -04
    assert columns["sold"]["kind"] == "numeric" and columns["sold"]["missing"] == 1
    assert columns["visited"]["kind"] == "numeric"
    np.testing.assert_allclose(columns["visited"]["examples"][:2], [18262.0, 18265 + 37 / 1440])
    train = next(run for run in all_runs(store) if run.data.tags["stage"] == "train")
    model = mlflow.pyfunc.load_model(train.data.tags["model_uri"])
    rows = table.drop(columns="label").head(3)
    assert len(model.predict(rows.assign(sold=["2021-03-05", None, "?"]))) == 3
    # The same instants written with another offset are the same input.
    shifted = ["2020-01-01T01:00:00+01:00", "2020-01-04T02:37:00+02:00", "2020-01-07T00:14:00-01:00"]
    pd.testing.assert_frame_equal(model.predict(rows.assign(visited=shifted)), model.predict(rows))
    refused = "column 'opened' holds '2020-01-31'; expected: a date written as '31/01/2020'"
    with pytest.raises(ValueError, match=refused):
        model.predict(rows.assign(opened="2020-01-31"))


def test_na_values_can_be_set(store, cli, tmp_path):
    table = _shop_table()
    table["shop"] = table["shop"].where(table.index % 10 != 0, "unknown")
    path = tmp_path / "shop.csv"
    table.to_csv(path, index=False)
    assert (
        cli(
            "prepare",
            "-e",
            "mlp-tabular",
            f"data.path={path}",
            "data.target=label",
            "data.na_values=[unknown]",
        )[0]
        == 0
    )
    shop = next(e for e in _artifact(_prepare_run(store), "schema.json")["columns"] if e["column"] == "shop")
    assert shop["missing"] == 6 and "unknown" not in shop["examples"]


def test_a_corrupt_image_is_skipped_counted_listed_and_tagged_when_asked(store, cli, tmp_path):
    root = _image_folder(tmp_path / "photos", images_per_class=12)
    (root / "light" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    overrides = ["data.source=images", f"data.path={root}", "data.image_size=[8,8]"]
    status, _, error = cli("prepare", "-e", "cnn-digits", *overrides)
    assert status == 2 and "broken.jpg" in error and "data.on_unreadable=skip" in error
    assert all_runs(store) == []
    status, out, error = cli("prepare", "-e", "cnn-digits", *overrides, "data.on_unreadable=skip")
    assert status == 0, error
    assert "skipped 1 of 25 images that cannot be read" in out and "light/broken.jpg" in out
    prepare = _prepare_run(store)
    assert _rows_read(prepare) == 24
    assert prepare.data.tags["skipped_files"] == "1"
    (skipped,) = _artifact(prepare, "skipped_files.json")["skipped"]
    assert skipped["file"] == "light/broken.jpg" and "cannot be decoded" in skipped["reason"]


def _wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(samples.astype("<i2").tobytes())


def test_an_empty_wav_and_a_broken_one_are_skipped_when_asked(store, cli, tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "clips"
    for name, pitch in (("low", 300.0), ("high", 1200.0)):
        for index in range(6):
            _wav(
                root / name / f"{index}.wav",
                8000 * np.sin(pitch * np.arange(2000) / 8000 * 6.28) + rng.normal(0, 50, 2000),
            )
    (root / "low" / "empty.wav").write_bytes(b"")
    (root / "high" / "broken.wav").write_bytes(b"RIFF0000 this is not a wave file")
    overrides = ["data.source=audio", f"data.path={root}", "data.audio_seconds=0.25"]
    status, out, error = cli("prepare", "-e", "cnn-speech", *overrides, "data.on_unreadable=skip")
    assert status == 0, error
    assert "skipped 2 of 14 WAV files" in out
    prepare = _prepare_run(store)
    assert _rows_read(prepare) == 12 and prepare.data.tags["skipped_files"] == "2"
    skipped = {
        entry["file"]: entry["reason"] for entry in _artifact(prepare, "skipped_files.json")["skipped"]
    }
    assert skipped == {"high/broken.wav": skipped["high/broken.wav"], "low/empty.wav": "is empty (0 bytes)"}
    assert "cannot be decoded" in skipped["high/broken.wav"]


def test_dialect_options_are_refused_where_they_do_not_apply(store, cli, tmp_path):
    root = _image_folder(tmp_path / "photos", images_per_class=3)
    status, _, error = cli(
        "prepare", "-e", "cnn-digits", "data.source=images", f"data.path={root}", "data.decimal=,"
    )
    assert status == 2 and "data.decimal" in error and "applies to data.source 'csv'" in error
    path = tmp_path / "shop.csv"
    _shop_table().to_csv(path, index=False)
    for bad, fragment in (
        ("data.on_unreadable=skip", "data.on_unreadable"),
        ("data.encoding=klingon", "not a text encoding"),
        ("data.delimiter=ab", "not one field separator"),
    ):
        status, _, error = cli("prepare", "-e", "mlp-tabular", f"data.path={path}", "data.target=label", bad)
        assert status == 2 and fragment in error, error
    assert all_runs(store) == []
