"""Real tables through `mlp-tabular`: column kinds inferred and overridden, columns left out said so,
empty cells and unseen categories in training and at predict time, labels written any way, raw
rows in and class names out of the logged model, the SavedModel and a served model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines import tracking
from pipelines.config import DataConfig
from pipelines.data import load_dataset

from .conftest import (
    SharedRun,
    all_runs,
    assert_each_refused_before_any_run,
    run_cli,
    shared_store,
    use_store,
)

LABELS = ("<=50K", ">50K", "mid range, €/yr")
QUICK = ["train.epochs=3", "train.batch_size=32"]


def _people_csv(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """A census-like table: a row counter, numbers with empty cells, text categories with empty
    cells and many values, a constant column, free text, and labels with `<`, `>`, `=`, a comma,
    a slash, spaces and a euro sign that depend on the columns."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    hours = rng.normal(40, 10, rows)
    job = rng.choice(["clerk", "chef", "pilot", "nurse"], rows)
    city = rng.choice([f"city {index}" for index in range(30)], rows)
    score = (age - 45) / 15 + (hours - 40) / 10 + np.where(job == "pilot", 2.0, 0.0) - (job == "clerk")
    label = np.where(score > 1.0, LABELS[1], np.where(score < -1.0, LABELS[0], LABELS[2]))
    age[rng.random(rows) < 0.1] = np.nan
    job = np.where(rng.random(rows) < 0.1, None, job)
    notes = [f"free text note number {index} about this person" for index in range(rows)]
    frame = pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "age": age,
            "hours per week": hours,
            "job": job,
            "city": city,
            "country": "Freedonia",
            "notes": notes,
            "income": label,
            "price": 1000 * age + np.where(job == "pilot", 20000, 0) + rng.normal(0, 500, rows),
        }
    )
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Iterator[SharedRun]:
    """mlp-tabular on the census-like table, classifying `income`: one run several tests read."""
    folder = tmp_path_factory.mktemp("people")
    path = _people_csv(folder / "people.csv")
    overrides = [f"data.path={path}", "data.target=income", "data.columns={price: ignore}", *QUICK]
    with shared_store(folder / "store") as uri:
        yield SharedRun(
            uri, *run_cli("run", "-e", "mlp-tabular", *overrides, "--out", str(folder / "served"))
        )


@pytest.fixture(scope="module")
def prices(tmp_path_factory) -> Iterator[SharedRun]:
    """mlp-tabular predicting the census-like table's `price` (a text column among the inputs), with
    a patience of 1 epoch but at least 8 batches (2 epochs of this table's 5) at a high learning
    rate so that it stops early: one run, two tests."""
    folder = tmp_path_factory.mktemp("prices")
    path = _people_csv(folder / "prices.csv", rows=200)
    overrides = [
        f"data.path={path}",
        "data.target=price",
        "data.columns.income=categorical",
        "train.epochs=200",
        "train.patience=1",
        "train.patience_min_updates=8",
        "train.learning_rate=0.05",
        "train.batch_size=32",
    ]
    with shared_store(folder / "store") as uri:
        yield SharedRun(uri, *run_cli("run", "-e", "mlp-tabular", *overrides))


def _runs_by_stage(uri: str) -> dict[str, mlflow.entities.Run]:
    return {run.data.tags["stage"]: run for run in all_runs(uri)}


def _artifact_json(uri: str, run, path: str):
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=path, tracking_uri=uri)
    return json.loads(Path(local).read_text())


def _unseen_rows() -> pd.DataFrame:
    """Raw rows as a user sends them: empty cells, a category never seen, integers for numbers."""
    return pd.DataFrame(
        {
            "age": [70, None, 30, 45],
            "hours per week": [60.0, 40.0, 20.0, None],
            "job": ["pilot", None, "astronaut", "chef"],
            "city": ["city 3", "city 99", None, "city 1"],
        }
    )


def test_kinds_are_inferred_and_columns_left_out_are_announced_with_why(people):
    assert people.status == 0, people.error
    prepare = _runs_by_stage(people.uri)["prepare"]
    schema = {
        entry["column"]: entry for entry in _artifact_json(people.uri, prepare, "schema.json")["columns"]
    }
    kinds = {name: entry["kind"] for name, entry in schema.items()}
    assert kinds == {
        "id": "ignore",
        "age": "numeric",
        "hours per week": "numeric",
        "job": "categorical",
        "city": "categorical",
        "country": "ignore",
        "notes": "text",
        "price": "ignore",
    }
    assert schema["price"]["why"] == "set by data.columns"
    assert schema["age"]["missing"] > 0 and schema["age"]["missing_indicator"]
    # 400 rows, a few hundred of them train: 2 or 3 bins of at least 100 values, not 16 thin ones.
    assert schema["hours per week"]["bins"] in (2, 3), schema["hours per week"]
    assert schema["age"]["distinct"] == 62 and len(schema["age"]["examples"]) == 5, "ages 18 to 79"
    assert schema["job"]["missing"] > 0 and set(schema["job"]["examples"]) == {
        "clerk",
        "chef",
        "pilot",
        "nurse",
    }
    assert schema["hours per week"]["input"] == "hours_per_week", "model inputs are valid TensorFlow names"
    announced = [line for line in people.output.splitlines() if "is not read" in line]
    assert len(announced) == 4, announced
    assert any("'id' is not read: counts the rows (an identifier)" in line for line in announced)
    assert any(
        "'country' is not read: the same value in every row ('Freedonia')" in line for line in announced
    )
    assert any("'notes' is not read: free text" in line for line in announced)
    assert prepare.data.params["dataset.features"] == "['age', 'hours per week', 'job', 'city']"


def test_a_table_run_names_its_data_after_the_file_and_logs_where_it_came_from(people):
    assert people.status == 0, people.error
    prepare = _runs_by_stage(people.uri)["prepare"]
    assert prepare.data.tags["dataset"] == "people", "the name defaults to the file stem"
    params = prepare.data.params
    assert (params["dataset.source"], params["dataset.task"]) == ("csv", "classification")
    assert params["dataset.location"].endswith("people.csv") and len(params["dataset.version"]) == 12
    inputs = {i.dataset.name: i.dataset for i in prepare.inputs.dataset_inputs}
    assert set(inputs) == {"people-train", "people-validation", "people-test"}
    assert params["dataset.location"] in inputs["people-train"].source and inputs["people-train"].digest
    schema = json.loads(inputs["people-train"].schema)["mlflow_colspec"]
    assert [(column["name"], column["type"]) for column in schema] == [
        ("age", "float"),
        ("hours per week", "float"),
        ("job", "string"),
        ("city", "string"),
    ]


def test_labels_written_any_way_keep_their_text_and_get_safe_mlflow_names(people):
    assert people.status == 0, people.error
    runs = _runs_by_stage(people.uri)
    counts = {name for name in runs["prepare"].data.metrics if name.startswith("class_count.train.")}
    assert counts == {
        "class_count.train.le50K",
        "class_count.train.gt50K",
        "class_count.train.mid range_ __yr",
    }
    assert set(_artifact_json(people.uri, runs["prepare"], "class_counts.json")["train"]) == set(LABELS)
    confusion = _artifact_json(people.uri, runs["evaluate"], "confusion_matrix.json")
    assert confusion["classes"] == sorted(LABELS)
    per_class = _artifact_json(people.uri, runs["evaluate"], "per_class.json")
    assert sorted(per_class["data"][index][0] for index in range(3)) == sorted(LABELS)


def test_logged_model_takes_raw_rows_with_empty_cells_and_unseen_categories(people, monkeypatch, tmp_path):
    assert people.status == 0, people.error
    use_store(people.uri, monkeypatch)  # a `models:/` URI resolves in the store MLflow points at
    train = _runs_by_stage(people.uri)["train"]
    # mlp-tabular's train.refit: auto on a small table: the model logged is the refit one.
    assert train.data.tags["refit_epochs"] == str(int(train.data.metrics["best_epoch"]))
    # mlp-tabular's decay is 1 % of each weight per epoch: per step, over this table's batches.
    train_rows = int(_runs_by_stage(people.uri)["prepare"].data.params["dataset.size.train"])
    batches = -(-train_rows // 32)  # QUICK's batch size
    assert float(train.data.params["weight_decay_per_step"]) == pytest.approx(0.01 / (3e-4 * batches))
    assert "note: train.refit: trained a fresh model on the train and validation splits" in people.output
    model_uri = train.data.tags["model_uri"]
    signature = mlflow.models.get_model_info(model_uri).signature
    assert signature.inputs.input_names() == ["age", "hours per week", "job", "city"]
    model = mlflow.pyfunc.load_model(model_uri)
    predicted = model.predict(_unseen_rows())
    assert list(predicted.columns) == ["prediction", *(f"probability({name})" for name in sorted(LABELS))]
    assert set(predicted["prediction"]) <= set(LABELS)
    probabilities = predicted.drop(columns="prediction").to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(probabilities).all(), "an empty cell or an unseen category is not an error"
    # Rows as pandas reads them from a file: int64 numbers, a category of integers, extra columns.
    read = pd.read_csv(_people_csv(tmp_path / "people.csv")).head(5)
    read["age"] = read["age"].fillna(30).astype("int64")
    read["city"] = np.arange(5)
    assert (read["age"].dtype, read["hours per week"].dtype) == (np.int64, np.float64)
    np.testing.assert_allclose(
        model.predict(read).drop(columns="prediction").to_numpy().sum(axis=1), 1.0, rtol=1e-5
    )
    with pytest.raises(ValueError, match="column 'age' holds 'forty'; expected: a number or an empty cell"):
        model.predict(read.assign(age="forty"))
    # The file's tokens for an empty cell ("?", "NA": data.na_values), the space after a delimiter
    # (", chef") and numbers written with signs are read as the training rows were.
    written = read.assign(
        age=["?", "NA", " 41", "52", ""],
        job=[" chef", "?", "N/A", " pilot", "nurse"],
        **{"hours per week": ["40%", "1,040", "$12.5", "-3", " 7 "]},
    )
    as_empty = read.assign(
        age=[None, None, 41, 52, None],
        job=["chef", None, None, "pilot", "nurse"],
        **{"hours per week": [40, 1040, 12.5, -3, 7]},
    )
    pd.testing.assert_frame_equal(model.predict(written), model.predict(as_empty))


@pytest.mark.parametrize("decimal", [".", ","])
def test_the_served_model_reads_numbers_as_the_training_file_was_read(decimal):
    """pipelines/table_serving.py cannot import deeparch (MLflow copies it alone into the model), so
    it repeats how prepare reads a number written as text: both must agree, cell by cell."""
    from pipelines.data.table import as_numbers
    from pipelines.table_serving import TableModel

    cells = ["$3,802", "29%", "1,234.5", "€ 12", "-$5", "$-5", "0,5", "12", "3 802", "+1,000", "45 %"]
    cells += ["1.234,5", "1e3", "1.234", "True", "false", "£1,000,000.25", "7"]
    read = as_numbers(pd.Series(cells, dtype=object), decimal)
    numbers = [cell for cell, value in zip(cells, read, strict=True) if not pd.isna(value)]
    assert len(numbers) >= 12
    served = TableModel().configure({"columns": [], "class_names": [], "task": "", "decimal": decimal})
    np.testing.assert_allclose(
        served.numbers(pd.Series(numbers, dtype=object), "c"),
        read.dropna().to_numpy(np.float64),
        rtol=1e-6,
    )
    for cell in set(cells) - set(numbers):
        with pytest.raises(ValueError, match="expected: a number or an empty cell"):
            served.numbers(pd.Series([cell], dtype=object), "c")


def test_the_linear_skip_trains_exports_with_parity_and_serves_raw_rows(store, cli, tmp_path):
    """The linear skip (off in mlp-tabular, tried by its tune space) through every stage: its
    weights learnt, a many-valued category weighed value by value, raw rows served."""
    path = _people_csv(tmp_path / "people.csv")
    overrides = [f"data.path={path}", "data.target=income", "data.columns={price: ignore}", *QUICK]
    status, _, error = cli(
        "run", "-e", "mlp-tabular", *overrides, "model.linear_skip=true", "train.refit=false"
    )
    assert status == 0, error
    runs = _runs_by_stage(store)
    assert runs["train"].data.params["model.linear_skip"] == "True"
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5
    model_uri = runs["train"].data.tags["model_uri"]
    keras_model = tracking.load_keras_model(model_uri)
    assert np.abs(keras_model.get_layer("linear_skip").kernel.numpy()).max() > 0, "it learnt"
    assert keras_model.get_layer("linear_skip_city").embeddings.shape[1] == len(LABELS)
    predicted = mlflow.pyfunc.load_model(model_uri).predict(_unseen_rows())
    probabilities = predicted.drop(columns="prediction").to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(probabilities).all(), "an empty cell or an unseen category is not an error"


def test_saved_model_takes_one_named_tensor_per_column_and_matches_keras_on_raw_rows(
    people, tmp_path, monkeypatch
):
    import tensorflow as tf

    assert people.status == 0, people.error
    use_store(people.uri, monkeypatch)  # a `models:/` URI resolves in the store MLflow points at
    runs = _runs_by_stage(people.uri)
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5
    serve = tf.saved_model.load(runs["export"].data.tags["export_path"]).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"age", "hours_per_week", "job", "city"}
    rows = _unseen_rows()
    tensors = {
        "age": tf.constant(rows["age"].to_numpy(np.float32)),
        "hours_per_week": tf.constant(rows["hours per week"].to_numpy(np.float32)),
        "job": tf.constant(rows["job"].fillna("").to_numpy(str)),
        "city": tf.constant(rows["city"].fillna("").to_numpy(str)),
    }
    (served,) = serve(**tensors).values()
    keras_model = tracking.load_keras_model(runs["train"].data.tags["model_uri"])
    expected = keras_model({key: tensor.numpy() for key, tensor in tensors.items()})
    np.testing.assert_allclose(served.numpy(), np.asarray(expected), atol=1e-5)
    logged = mlflow.pyfunc.load_model(runs["train"].data.tags["model_uri"]).predict(rows)
    np.testing.assert_allclose(logged.drop(columns="prediction").to_numpy(), served.numpy(), atol=1e-5)
    assert served.numpy().std(axis=0).max() > 1e-3, "raw rows give distinct, unsaturated outputs"
    # The train split's statistics travel inside the model: ages (about 48) go in unstandardised.
    dataset = load_dataset(
        DataConfig(
            source="csv",
            path=runs["prepare"].data.params["dataset.location"],
            target="income",
            columns={"price": "ignore"},
        )
    )
    train_ages = dataset.arrays("train").x["age"]
    mean = np.ravel(keras_model.get_layer("numeric_normalization").mean)[0]
    np.testing.assert_allclose(mean, np.nanmean(train_ages), rtol=1e-5)


def test_encoding_imputes_compresses_bins_flags_and_looks_up_as_documented():
    import keras

    from models.spec import DataSpec, TableColumn
    from models.tabular import encoded_table, table_inputs

    number = TableColumn(
        "x", "x", "numeric", mean=2.0, variance=4.0, missing=True, bin_edges=(0.0, 1.0, 3.0, 7.0)
    )
    category = TableColumn("c", "c", "categorical", vocabulary=("a", ""))
    spec = DataSpec(input_shape=(2,), columns=(number, category))
    inputs = table_inputs(spec)
    encode = keras.Model(inputs, encoded_table(inputs, spec).features)
    encoded = np.asarray(
        encode(
            {"x": np.array([2.0, np.nan, 100.0], np.float32), "c": np.array(["a", "", "never seen"], object)}
        )
    )
    # asinh of the standardised value, its three bins, the missing indicator, then out-of-vocabulary, a, "".
    expected = [
        [0.0, 1.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0],  # 2 is the mean, halfway through the bin [1, 3)
        [0.0, 1.0, 0.5, 0.0, 1.0, 0.0, 0.0, 1.0],  # empty: imputed with the mean, flagged; "" a category
        [np.arcsinh(49.0), 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0],  # far above every bin; an unseen value
    ]
    np.testing.assert_allclose(encoded, expected, rtol=1e-6, atol=1e-6)


def test_an_ensemble_averages_its_members_outputs():
    import keras

    from models.mlp import build_mlp
    from models.spec import DataSpec, TableColumn

    spec = DataSpec(
        input_shape=(1,), num_classes=3, columns=(TableColumn("x", "x", "numeric", bin_edges=(0.0, 1.0)),)
    )
    model = build_mlp(spec, units=[8], ensemble=3)
    rows = {"x": np.array([-1.0, 0.5, 3.0], np.float32)}
    heads = keras.Model(
        model.inputs, [model.get_layer(f"probabilities_{member}").output for member in range(3)]
    )
    members = np.stack([np.asarray(output) for output in heads(rows)])
    assert not np.allclose(members[0], members[1]), "members start from different weights"
    np.testing.assert_allclose(np.asarray(model(rows)), members.mean(axis=0), rtol=1e-6)


def test_column_kinds_can_be_set_and_integers_read_as_categories(tmp_path):
    path = tmp_path / "homes.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "zip": rng.choice([2134, 2139, 10001], 60),
            "rooms": rng.integers(1, 6, 60),
            "value": rng.normal(0, 1, 60),
        }
    ).to_csv(path, index=False)
    config = DataConfig(
        source="csv", path=str(path), target="value", columns={"zip": "categorical", "rooms": "ignore"}
    )
    dataset = load_dataset(config, tmp_path / "store")
    (zip_code,) = dataset.spec.columns
    assert (zip_code.name, zip_code.kind) == ("zip", "categorical")
    assert set(zip_code.vocabulary) == {"2134", "2139", "10001"}
    schema = {entry["column"]: entry for entry in dataset.table_schema}
    assert schema["rooms"] == {"column": "rooms", "kind": "ignore", "why": "set by data.columns"}
    assert dataset.spec.task == "regression"


@pytest.mark.slow  # make test's time budget: the `prices` run, early-stopped (about 12 s of a worker)
def test_regression_with_a_text_column_runs_end_to_end(prices):
    assert prices.status == 0, prices.error
    runs = _runs_by_stage(prices.uri)
    assert runs["prepare"].data.params["dataset.task"] == "regression"
    assert "job" in runs["prepare"].data.params["dataset.features"]
    assert {"test_rmse", "test_mae"} <= set(runs["evaluate"].data.metrics)
    # Prices up to about 100,000: held to float32 rounding of that size (export.parity_tolerance).
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5 * 100_000
    predicted = mlflow.pyfunc.load_model(runs["train"].data.tags["model_uri"]).predict(
        _unseen_rows().assign(income=["<=50K", None, "new", ">50K"])
    )
    assert list(predicted.columns) == ["prediction"] and np.isfinite(predicted["prediction"]).all()


@pytest.mark.slow  # make test's time budget: the `prices` run, early-stopped (about 12 s of a worker)
def test_patience_stops_training_and_restores_the_best_epoch(prices):
    assert prices.status == 0, prices.error
    train = _runs_by_stage(prices.uri)["train"]
    stopped = int(train.data.tags["early_stopped_epoch"])
    assert stopped < 200 and "stopped_epoch" not in train.data.tags, "a patient stop is the config's result"
    history = mlflow.MlflowClient(prices.uri).get_metric_history(train.info.run_id, "val_loss")
    assert len(history) == stopped
    best = min(history, key=lambda metric: metric.value)
    assert train.data.metrics["best_epoch"] == best.step
    # train.patience=1, but at least 8 batches: 2 epochs of this table's batches of 32.
    batches = -(-int(_runs_by_stage(prices.uri)["prepare"].data.params["dataset.size.train"]) // 32)
    patience = max(1, -(-8 // batches))
    assert patience == 2, f"{batches} batches an epoch: train.patience_min_updates is what acts here"
    assert stopped - best.step == patience, "that many epochs without a better val_loss, then it stops"
    note = f"train.patience: stopped after epoch {stopped} of at most 200, {patience} epochs without"
    assert f"{note} a better val_loss" in prices.output


def test_rows_with_an_empty_target_are_left_out_and_said_so(tmp_path):
    path = _people_csv(tmp_path / "people.csv", rows=100)
    frame = pd.read_csv(path)
    frame.loc[[3, 50], "income"] = None
    frame.to_csv(path, index=False)
    dataset = load_dataset(DataConfig(source="csv", path=str(path), target="income"), tmp_path / "store")
    assert sum(dataset.sizes().values()) == 98
    assert dataset.notes == [
        "left out 2 of 100 rows whose target 'income' is empty (the first is data row 4)"
    ]


def test_whole_number_targets_are_classes_even_beside_an_empty_cell_and_said_so(tmp_path):
    """0/1 with an empty target cell is read by pandas as 0.0/1.0: still two classes, not a
    regression; and a user who meant a number is told how to say so."""
    path = _people_csv(tmp_path / "people.csv", rows=100)
    frame = pd.read_csv(path)
    frame["income"] = (frame["hours per week"] > 40).astype(int).astype(object)
    frame.loc[7, "income"] = None
    frame.to_csv(path, index=False)
    assert pd.read_csv(path)["income"].dtype == np.float64
    dataset = load_dataset(DataConfig(source="csv", path=str(path), target="income"), tmp_path / "store")
    assert (dataset.spec.task, list(dataset.class_names)) == ("classification", ["0", "1"])
    assert dataset.notes[0] == (
        "column 'income' holds 2 whole numbers (0, 1), read as classes; "
        "data.task=regression predicts it as a number"
    )
    regression = load_dataset(
        DataConfig(source="csv", path=str(path), target="income", task="regression"), tmp_path / "store"
    )
    assert regression.spec.task == "regression"
    assert not any("read as classes" in note for note in regression.notes)


def _all_empty_target(tmp: Path) -> Path:
    path = _people_csv(tmp / "people.csv", rows=30)
    pd.read_csv(path).assign(income=None).to_csv(path, index=False)
    return path


def _nothing_to_read(tmp: Path) -> Path:
    path = tmp / "ids.csv"
    pd.DataFrame({"id": np.arange(1, 41), "same": "x", "label": ["a", "b"] * 20}).to_csv(path, index=False)
    return path


def _numbers_csv(tmp: Path) -> Path:
    path = tmp / "numbers.csv"
    pd.DataFrame({"x": np.linspace(0, 1, 30), "label": ["a", "b", "c"] * 10}).to_csv(path, index=False)
    return path


def _one_class(tmp: Path) -> Path:
    path = _people_csv(tmp / "people.csv", rows=30)
    pd.read_csv(path).assign(income=">50K").to_csv(path, index=False)
    return path


BAD_TABLES = {
    "one class in every row": (
        lambda tmp: [f"data.path={_one_class(tmp)}", "data.target=income"],
        ["data.target", "'income'", "one value ('>50K')", "at least two classes"],
    ),
    "target empty in every row": (
        lambda tmp: [f"data.path={_all_empty_target(tmp)}", "data.target=income"],
        ["data.target", "'income'", "empty in every row"],
    ),
    "no usable feature": (
        lambda tmp: [f"data.path={_nothing_to_read(tmp)}", "data.target=label"],
        ["data.columns", "no column to read", "id: counts the rows", "same: the same value in every row"],
    ),
    "a column that is not in the file": (
        lambda tmp: [
            f"data.path={_people_csv(tmp / 'p.csv', rows=30)}",
            "data.target=income",
            "data.columns.zipcode=categorical",
        ],
        ["data.columns", "'zipcode' is not a column", "allowed: id, age"],
    ),
    "an unknown kind": (
        lambda tmp: [
            f"data.path={_people_csv(tmp / 'p.csv', rows=30)}",
            "data.target=income",
            "data.columns.age=date",
        ],
        ["data.columns.age", "'date'", "numeric", "categorical"],
    ),
    "a per-step weight decay beside mlp-tabular's per-epoch one": (
        lambda tmp: [f"data.path={_numbers_csv(tmp)}", "data.target=label", "train.weight_decay=0.1"],
        ["train.weight_decay (0.1)", "train.weight_decay_per_epoch (0.01) both set", "one of them"],
    ),
    "a table for a model that reads sequences": (
        lambda tmp: [f"data.path={_numbers_csv(tmp)}", "data.target=label", "model.architecture=cnn"],
        ["model.architecture", "'cnn' cannot read the table", "allowed for tables: mlp"],
    ),
}


def test_a_table_of_categories_alone_trains_and_exports(store, cli, tmp_path):
    """No number column: TensorFlow crashed batching the empty number rows (a segmentation fault)."""
    path = tmp_path / "categories.csv"
    rng = np.random.default_rng(0)
    job, city = rng.choice(["clerk", "chef", "pilot"], 120), rng.choice(["north", "south"], 120)
    label = np.where((job == "pilot") | (city == "north"), "yes", "no")
    pd.DataFrame({"job": job, "city": city, "label": label}).to_csv(path, index=False)
    status, _, error = cli("run", "-e", "mlp-tabular", f"data.path={path}", "data.target=label", *QUICK)
    assert status == 0, error
    runs = _runs_by_stage(store)
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5
    assert "test_accuracy" in runs["evaluate"].data.metrics


def test_each_bad_table_exits_2_naming_the_column_before_any_run(store, cli, tmp_path):
    assert_each_refused_before_any_run(store, cli, tmp_path, "mlp-tabular", BAD_TABLES, QUICK)


@pytest.mark.slow
def test_mlflow_models_serve_answers_dataframe_records_and_split_with_class_names(people):
    """A real `mlflow models serve` on 127.0.0.1 (about 20 s to start) answers raw rows."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    assert people.status == 0, people.error
    model_uri = _runs_by_stage(people.uri)["train"].data.tags["model_uri"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": people.uri, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    command = [f"{bin_dir}/mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ask(body: dict) -> list[dict]:
        request = urllib.request.Request(
            f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        return json.loads(urllib.request.urlopen(request, timeout=30).read())["predictions"]

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the model server did not start"
                time.sleep(0.5)
        rows = _unseen_rows().astype(object).where(_unseen_rows().notna(), None)
        records = ask({"dataframe_records": rows.to_dict(orient="records")})
        split = ask({"dataframe_split": rows.to_dict(orient="split") | {"index": None}})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    expected = mlflow.pyfunc.load_model(model_uri).predict(_unseen_rows())
    for answer in (records, split):
        assert [row["prediction"] for row in answer] == expected["prediction"].tolist()
        assert set(answer[0]) == {"prediction", *(f"probability({name})" for name in LABELS)}
        np.testing.assert_allclose(
            [row["probability(>50K)"] for row in answer], expected["probability(>50K)"], atol=1e-5
        )


@pytest.mark.slow  # make test's time budget: two more exports of the `people` model
def test_export_refuses_a_saved_model_beyond_the_tolerance_of_its_outputs_size(
    people, cli, monkeypatch, tmp_path
):
    """A planted parity difference: 0.5 on outputs of at most 1 (probabilities) is refused and writes
    nothing; the same 0.5 on outputs of 1e5 (a price) is float32 rounding and passes."""
    from pipelines.stages import export

    assert people.status == 0, people.error
    use_store(people.uri, monkeypatch)  # the module's other shared run may hold the environment
    train_run = _runs_by_stage(people.uri)["train"].info.run_id
    monkeypatch.setattr(export, "saved_model_parity", lambda *_: (0.5, 1.0))
    status, _, error = cli("export", "--run", train_run, "--out", str(tmp_path / "refused"))
    assert status != 0 and "differs from the Keras model by 0.5" in error
    assert not (tmp_path / "refused").exists()
    monkeypatch.setattr(export, "saved_model_parity", lambda *_: (0.5, 1e5))
    status, output, error = cli("export", "--run", train_run, "--out", str(tmp_path / "kept"))
    assert status == 0, error
    assert (tmp_path / "kept" / "saved_model.pb").is_file()
