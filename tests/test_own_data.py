"""The user's own data: CSV (classification, regression, forecast), NumPy .npz and image folders,
through the same CLI and stages as the TFDS datasets; bad files are refused before any run. Tables
of numbers and categories in depth: tests/test_tables.py. A CSV regression and a CSV forecast run
once each in tests/test_metric_values.py, whose tests also read their own-data logs."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.config import DataConfig, load_experiment
from pipelines.data import load_dataset

from .conftest import all_runs, assert_each_refused_before_any_run

FORECAST = ["data.source=csv", "data.target=value", "data.task=forecast", "data.window=12"]
QUICK_FORECAST = [
    *FORECAST,
    "data.time_column=time",
    "model.units=[8]",
    "model.bidirectional=false",
]

QUICK = ["train.epochs=1", "train.batch_size=16"]


def _runs_by_stage(uri: str) -> dict[str, mlflow.entities.Run]:
    return {run.data.tags["stage"]: run for run in all_runs(uri)}


def _table_csv(path: Path, rows: int = 90) -> Path:
    """Two numeric features far from zero, a text column, and a text label that depends on them."""
    rng = np.random.default_rng(0)
    a = rng.normal(1000.0, 50.0, rows)
    b = rng.normal(-20.0, 4.0, rows)
    pd.DataFrame(
        {
            "a": a,
            "b": b,
            "comment": ["seen"] * rows,
            "label": np.where(a / 50 + b / 4 > 15, "cat", "dog"),
            "value": 0.1 * a - b + rng.normal(0.0, 1.0, rows),
        }
    ).to_csv(path, index=False)
    return path


def _series_csv(path: Path, rows: int = 160, shuffled: bool = True) -> Path:
    """A noisy sine wave with a time column, its rows written out of time order."""
    time = np.arange(rows)
    frame = pd.DataFrame({"time": time, "value": 50 + 5 * np.sin(time / 6) + 0.1 * np.cos(time)})
    if shuffled:
        frame = frame.sample(frac=1.0, random_state=0)
    frame.to_csv(path, index=False)
    return path


def _image_folder(root: Path, images_per_class: int = 5) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for offset, name in ((0, "dark"), (150, "light")):
        (root / name).mkdir(parents=True)
        for index in range(images_per_class):
            pixels = rng.integers(offset, offset + 100, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def test_augmenting_a_csv_table_is_refused_naming_the_fields(store, cli, tmp_path):
    path = _table_csv(tmp_path / "pets.csv")
    overrides = ["data.source=csv", f"data.path={path}", "data.target=label", "train.augment_shift=3"]
    status, _, error = cli("run", "-e", "mlp-digits", *overrides, *QUICK)
    assert status == 2
    assert "train.augment_shift/augment_scale: 3/0.0" in error and "a table of CSV features" in error
    assert "Traceback" not in error


def test_csv_split_column_decides_the_splits_and_otherwise_a_seeded_split_does(tmp_path):
    path = tmp_path / "given.csv"
    pd.DataFrame(
        {"x": np.arange(10.0), "label": [0, 1] * 5, "split": ["train"] * 6 + ["val"] * 2 + ["test"] * 2}
    ).to_csv(path, index=False)
    dataset = load_dataset(DataConfig(source="csv", path=str(path), target="label"))
    assert dataset.sizes() == {"train": 6, "validation": 2, "test": 2}
    np.testing.assert_array_equal(np.sort(dataset.arrays("test").x["x"]), [8, 9])
    assert dataset.features == ["x"], "the split column is not a feature"

    table = _table_csv(tmp_path / "pets.csv")
    first, second = (
        load_dataset(DataConfig(source="csv", path=str(table), target="label")) for _ in range(2)
    )
    assert first.digest == second.digest
    assert first.sizes() == {"train": 65, "validation": 7, "test": 18}
    assert first.class_names == ["cat", "dog"]


def test_forecast_windows_are_in_time_order_and_split_chronologically(tmp_path):
    path = tmp_path / "ramp.csv"
    time = np.arange(100)
    pd.DataFrame({"time": time, "value": time.astype(float)}).sample(frac=1.0, random_state=1).to_csv(
        path, index=False
    )
    dataset = load_dataset(
        DataConfig(
            source="csv",
            path=str(path),
            target="value",
            task="forecast",
            time_column="time",
            window=5,
            horizon=3,
        )
    )
    assert dataset.spec.input_shape == (5, 1) and dataset.spec.num_outputs == 3
    train, validation, test = (dataset.arrays(name) for name in ("train", "validation", "test"))
    # Each window reads 5 consecutive values and predicts the 3 after them.
    np.testing.assert_array_equal(train.x[0, :, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(train.y[0], [5, 6, 7])
    # No target is shared across splits and every later split comes later in time.
    assert train.y.max() < validation.y.min() and validation.y.max() < test.y.min()
    assert test.y.max() == 99


# Both layouts run in `make test-slow` (make test's time budget: make test runs CSV, image, text
# and audio sources through the same stages after prepare).
@pytest.mark.slow
@pytest.mark.parametrize("layout", ["split", "whole"])
def test_npz_runs_end_to_end_in_both_layouts(store, cli, tmp_path, layout):
    rng = np.random.default_rng(0)

    def part(rows: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(0, 256, (rows, 8, 8, 1), dtype=np.uint8), rng.integers(0, 3, rows)

    path = tmp_path / f"{layout}.npz"
    if layout == "split":
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = part(40), part(10), part(12)
        np.savez(
            path, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test
        )
    else:
        x, y = part(60)
        np.savez(path, x=x, y=y)
    assert cli("run", "-e", "mlp-digits", "data.source=npz", f"data.path={path}", *QUICK)[0] == 0
    prepare = _runs_by_stage(store)["prepare"]
    assert prepare.data.params["dataset.source"] == "npz"
    assert prepare.data.params["dataset.input_shape"] == "[8, 8, 1]"
    sizes = {
        name: int(prepare.data.params[f"dataset.size.{name}"]) for name in ("train", "validation", "test")
    }
    if layout == "split":
        assert sizes == {"train": 40, "validation": 10, "test": 12}
    else:
        assert sum(sizes.values()) == 60 and sizes["test"] == 12
    x = load_dataset(DataConfig(source="npz", path=str(path))).arrays("train").x
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0, "uint8 pixels are scaled to [0, 1]"


def test_image_folder_runs_end_to_end_with_a_class_per_sub_folder(store, cli, tmp_path):
    folder = _image_folder(tmp_path / "shades")
    overrides = ["data.source=images", f"data.path={folder}", "data.image_size=[8,8]", "data.grayscale=true"]
    assert cli("run", "-e", "cnn-digits", *overrides, *QUICK)[0] == 0
    prepare = _runs_by_stage(store)["prepare"]
    assert prepare.data.params["dataset.input_shape"] == "[8, 8, 1]"
    assert prepare.data.params["dataset.num_classes"] == "2"
    assert {"class_count.train.dark", "class_count.train.light"} <= set(prepare.data.metrics)
    x = (
        load_dataset(DataConfig(source="images", path=str(folder), image_size=[8, 8], grayscale=True))
        .arrays("train")
        .x
    )
    assert 0.0 <= x.min() and x.max() <= 1.0


def _ragged_npz(path: Path) -> Path:
    np.savez(path, x=np.array([np.zeros(3), np.zeros(2)], dtype=object), y=np.array([0, 1]))
    return path


def _mismatched_npz(path: Path) -> Path:
    np.savez(path, x=np.zeros((10, 3)), y=np.zeros(9))
    return path


def _empty_class_folder(root: Path) -> Path:
    _image_folder(root)
    (root / "empty").mkdir()
    return root


BAD_INPUTS = {
    "missing file": (
        lambda tmp: ["data.source=csv", f"data.path={tmp / 'nope.csv'}", "data.target=label"],
        ["data.path", "nope.csv", "does not exist"],
    ),
    "missing path": (
        lambda tmp: ["data.source=csv", "data.target=label"],
        ["data.path", "required", "'csv'"],
    ),
    "missing target column": (
        lambda tmp: ["data.source=csv", f"data.path={_table_csv(tmp / 't.csv')}", "data.target=price"],
        ["data.target", "'price'", "allowed: a, b, comment, label, value"],
    ),
    "text in a column set numeric": (
        lambda tmp: [
            "data.source=csv",
            f"data.path={_table_csv(tmp / 't.csv')}",
            "data.target=label",
            "data.columns.comment=numeric",
        ],
        ["data.columns", "'comment'", "holds 'seen' in data row 1", "data.columns.comment=categorical"],
    ),
    "ragged npz": (
        lambda tmp: ["data.source=npz", f"data.path={_ragged_npz(tmp / 'r.npz')}"],
        ["data.path", "'x'", "object array", "ragged"],
    ),
    "x and y of different lengths": (
        lambda tmp: ["data.source=npz", f"data.path={_mismatched_npz(tmp / 'm.npz')}"],
        ["data.path", "(10, 3)", "(9,)", "one y entry per x row"],
    ),
    "empty class folder": (
        lambda tmp: ["data.source=images", f"data.path={_empty_class_folder(tmp / 'images')}"],
        ["data.path", "'empty'", "holds no image"],
    ),
    "too few rows for the window": (
        lambda tmp: [
            "data.source=csv",
            f"data.path={_series_csv(tmp / 's.csv', rows=15)}",
            "data.target=value",
            "data.task=forecast",
            "data.window=12",
        ],
        ["data.window", "12", "needs at least", "which has 15"],
    ),
}


def test_each_bad_input_exits_2_naming_the_problem_before_any_run(store, cli, tmp_path):
    assert_each_refused_before_any_run(store, cli, tmp_path, "mlp-digits", BAD_INPUTS, QUICK)


def test_augmentation_typed_for_a_forecast_is_refused_naming_the_fields(store, cli, tmp_path):
    path = _series_csv(tmp_path / "sales.csv", shuffled=False)
    typed = ["train.augment_shift=3", "train.augment_scale=0.2"]
    status, _, error = cli("run", "-e", "lstm-mnist1d", *FORECAST, f"data.path={path}", *typed)
    assert status == 2
    assert "train.augment_shift=3 train.augment_scale=0.2: a forecast" in error
    assert "allowed: train.augment_shift=0 train.augment_scale=0" in error
    assert "Traceback" not in error and all_runs(store) == []


def test_a_name_given_on_the_command_line_names_the_own_data_experiment(tmp_path):
    path = _series_csv(tmp_path / "sales.csv", shuffled=False)
    overrides = [*FORECAST, f"data.path={path}"]
    assert load_experiment("lstm-mnist1d", overrides).name == "lstm-sales"
    assert load_experiment("lstm-mnist1d", [*overrides, "name=sales-v2"]).name == "sales-v2"
    assert load_experiment("lstm-mnist1d").name == "lstm-mnist1d", "the shipped data keeps the shipped name"
