"""The numbers evaluate logs, recomputed from first principles: each model's exported SavedModel is
reloaded in another process and run on the prepared test split, and scikit-learn / NumPy compute
from its outputs what MLflow holds (accuracy, macro-F1, confusion matrix, per-class table, MSE,
MAE, RMSE, the mean and naive baselines). A metric of the wrong split, a wrong average or a wrong
baseline formula fails here, not only a missing one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk

from pipelines import tracking

from .conftest import TINY, all_runs, run_cli, shared_store
from .test_own_data import QUICK, QUICK_FORECAST, _series_csv, _table_csv
from .test_text import TINY_CNN, _reviews_csv

# Logged metrics are float64 sums of float32 outputs; the reloaded SavedModel computes the same
# graph (export checks parity to 1e-5), so counts match exactly and sums to float32 rounding.
RELATIVE = 1e-5

# A script run in a fresh Python process: it knows nothing of the pipeline's Keras objects, only
# the exported SavedModel and the prepared dataset's folder (as the prepare run logs it).
SERVE_TEST_SPLIT = """
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
from pipelines.data import open_dataset

for job in json.loads(sys.argv[1]):
    prepared = Path(job["prepared_path"])
    dataset = open_dataset(prepared.name, prepared.parent)
    test, train = dataset.arrays("test"), dataset.arrays("train")
    serve = tf.saved_model.load(job["export_path"]).signatures["serving_default"]
    inputs = test.x if isinstance(test.x, dict) else {next(iter(serve.structured_input_signature[1])): test.x}
    (outputs,) = serve(**{name: tf.constant(value) for name, value in inputs.items()}).values()
    np.savez(
        job["out"],
        outputs=outputs.numpy(),
        targets=test.y,
        train_targets=train.y,
        last_past=test.x[:, -1, 0] if dataset.forecast else np.zeros(0),
        class_names=np.array(dataset.class_names, dtype=object),
    )
"""


@dataclass
class Served:
    """A pipeline run, and its SavedModel's outputs on the prepared test split (another process)."""

    uri: str
    runs: dict  # stage -> mlflow Run
    outputs: np.ndarray
    targets: np.ndarray
    train_targets: np.ndarray
    last_past: np.ndarray  # a forecast's last past value of each test window
    class_names: list[str]

    @property
    def logged(self) -> dict[str, float]:
        return self.runs["evaluate"].data.metrics

    def artifact(self, path: str) -> dict:
        return json.loads(Path(tracking.artifact_file(self.runs["evaluate"], path)).read_text())

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.argmax(axis=-1)


def _pipeline(folder: Path, experiment: str, *overrides: str) -> tuple[str, dict]:
    """`deeparch run -e experiment overrides` in a store of its own; (store URI, runs by stage)."""
    with shared_store(folder) as uri:
        status, _, error = run_cli("run", "-e", experiment, *overrides, "--out", str(folder / "served"))
    assert status == 0, error
    return uri, {run.data.tags["stage"]: run for run in all_runs(uri)}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict[str, Served]]:
    """A digits classifier, a CSV regression, a CSV forecast and a CSV text classifier, each run
    prepare to export once; then one process reloads the four SavedModels and serves the test splits."""
    folder = tmp_path_factory.mktemp("metric-values")
    prices = _table_csv(folder / "prices.csv")
    sales = _series_csv(folder / "sales.csv")
    reviews = _reviews_csv(folder / "reviews.csv")
    pipelines = {
        "classifier": ("mlp-digits", *TINY, "model.units=[16]"),
        "regressor": (
            "mlp-digits",
            "data.source=csv",
            f"data.path={prices}",
            "data.target=value",
            "data.features=[a,b]",
            *QUICK,
        ),
        "forecast": ("lstm-mnist1d", *QUICK_FORECAST, "data.horizon=3", f"data.path={sales}", *QUICK),
        "text": ("cnn-text", "data.source=csv", f"data.path={reviews}", "data.target=sentiment", *TINY_CNN),
    }
    runs = {name: _pipeline(folder / name, *command) for name, command in pipelines.items()}
    jobs = [
        {
            "prepared_path": stages["prepare"].data.params["dataset.prepared_path"],
            "export_path": stages["export"].data.tags["export_path"],
            "out": str(folder / f"{name}.npz"),
        }
        for name, (_, stages) in runs.items()
    ]
    result = subprocess.run(
        [sys.executable, "-c", SERVE_TEST_SPLIT, json.dumps(jobs)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = {}
    for name, (uri, stages) in runs.items():
        arrays = np.load(folder / f"{name}.npz", allow_pickle=True)
        served[name] = Served(
            uri,
            stages,
            arrays["outputs"].astype(np.float64),
            arrays["targets"],
            arrays["train_targets"],
            arrays["last_past"],
            arrays["class_names"].tolist(),
        )
    yield served


CLASSIFIERS = ["classifier", "text"]
REGRESSIONS = ["regressor", "forecast"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_accuracy_and_macro_f1_are_those_of_the_saved_models_test_predictions(served, name):
    model = served[name]
    classes = len(model.class_names)
    # Every class is in the test split, so the macro average is over every class either way.
    assert set(model.targets.tolist()) == set(range(classes))
    assert model.logged["test_accuracy"] == pytest.approx(
        sk.accuracy_score(model.targets, model.predictions), rel=RELATIVE
    )
    assert model.logged["test_macro_f1"] == pytest.approx(
        sk.f1_score(model.targets, model.predictions, average="macro", zero_division=0), rel=RELATIVE
    )


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_loss_is_the_mean_cross_entropy_of_the_test_labels(served, name):
    model = served[name]
    # Keras' cross-entropy clips probabilities to [1e-7, 1 - 1e-7]; none of these is that close.
    true_class = model.outputs[np.arange(len(model.targets)), model.targets]
    assert 1e-7 < true_class.min() and true_class.max() < 1 - 1e-7
    expected = -np.mean(np.log(true_class))
    assert model.logged["test_loss"] == pytest.approx(expected, rel=RELATIVE)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_confusion_matrix_counts_true_classes_by_row_and_predictions_by_column(served, name):
    model = served[name]
    logged = model.artifact("confusion_matrix.json")
    assert logged["classes"] == model.class_names
    expected = sk.confusion_matrix(model.targets, model.predictions, labels=range(len(model.class_names)))
    np.testing.assert_array_equal(logged["matrix"], expected)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_per_class_table_holds_each_class_precision_recall_f1_and_support(served, name):
    model = served[name]
    table = model.artifact("per_class.json")
    columns = {column: [row[i] for row in table["data"]] for i, column in enumerate(table["columns"])}
    assert columns["class"] == model.class_names
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        model.targets, model.predictions, labels=range(len(model.class_names)), zero_division=0
    )
    np.testing.assert_allclose(columns["precision"], precision, rtol=RELATIVE)
    np.testing.assert_allclose(columns["recall"], recall, rtol=RELATIVE)
    np.testing.assert_allclose(columns["f1"], f1, rtol=RELATIVE)
    np.testing.assert_array_equal(columns["support"], support)


@pytest.mark.parametrize("name", REGRESSIONS)
def test_mse_mae_and_rmse_are_those_of_the_saved_models_test_predictions(served, name):
    model = served[name]
    targets = model.targets.reshape(len(model.targets), -1)
    predictions = model.outputs.reshape(targets.shape)
    mse = sk.mean_squared_error(targets, predictions)
    assert model.logged["test_mse"] == pytest.approx(mse, rel=RELATIVE)
    assert model.logged["test_loss"] == pytest.approx(mse, rel=RELATIVE)
    assert model.logged["test_rmse"] == pytest.approx(np.sqrt(mse), rel=RELATIVE)
    assert model.logged["test_mae"] == pytest.approx(
        sk.mean_absolute_error(targets, predictions), rel=RELATIVE
    )


@pytest.mark.parametrize("name", REGRESSIONS)
def test_baseline_mse_is_that_of_always_predicting_the_train_targets_mean(served, name):
    model = served[name]
    targets = model.targets.reshape(len(model.targets), -1).astype(np.float64)
    train_mean = model.train_targets.reshape(len(model.train_targets), -1).astype(np.float64).mean(axis=0)
    expected = sk.mean_squared_error(targets, np.broadcast_to(train_mean, targets.shape))
    assert model.logged["test_baseline_mse"] == pytest.approx(expected, rel=RELATIVE)


def test_naive_forecast_errors_are_those_of_repeating_each_windows_last_value(served):
    model = served["forecast"]
    targets = model.targets.reshape(len(model.targets), -1).astype(np.float64)
    naive = np.repeat(model.last_past.astype(np.float64)[:, None], targets.shape[1], axis=1)
    assert model.logged["test_naive_mae"] == pytest.approx(
        sk.mean_absolute_error(targets, naive), rel=RELATIVE
    )
    assert model.logged["test_naive_rmse"] == pytest.approx(
        np.sqrt(sk.mean_squared_error(targets, naive)), rel=RELATIVE
    )
