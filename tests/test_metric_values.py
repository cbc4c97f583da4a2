"""The numbers evaluate logs, recomputed from first principles: each model's exported SavedModel is
reloaded in another process and run on the prepared test split, and scikit-learn / NumPy compute
from its outputs what MLflow holds (accuracy, macro-F1, confusion matrix, per-class table, MSE,
MAE, RMSE, the mean and naive baselines); a conditional GAN's accuracy is recomputed from its
exported generator and evaluator. A metric of the wrong split, a wrong average or a wrong baseline
formula fails here, not only a missing one.

The CSV regression, forecast and text runs are also the own-data runs whose other logs (experiment
name, headline, a forecast's dropped augmentation, a text model's raw-string SavedModel) the tests
at the end read: one run each for both (CSV sources otherwise: `test_own_data.py`, text folders:
`test_text.py`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from sklearn import metrics as sk

from pipelines import tracking

from .conftest import GAN_GENERATED_SAMPLES, TINY, GanRun, all_runs, run_cli, shared_store, use_store
from .test_own_data import QUICK, QUICK_FORECAST, _series_csv, _table_csv
from .test_text import TINY_LSTM, _reviews_csv, _serve

# Logged metrics are float64 sums of float32 outputs; the reloaded SavedModel computes the same
# graph (export checks parity to 1e-5), so counts match exactly and sums to float32 rounding.
RELATIVE = 1e-5

# A script run in a fresh Python process: it knows nothing of the pipeline's Keras objects, only
# the exported SavedModels and the prepared dataset's folder (as the prepare run logs it). A test
# split job serves the split; a generator job feeds the evaluate stage's generator inputs (latents
# drawn with seed + 1, labels cycling through the classes: pipelines.serving.generator_inputs)
# through the generator (pixel values, back to the [0, 1] the evaluator was trained on), then the
# evaluator, and keeps the evaluator's most probable class of each sample.
SERVE_SAVED_MODELS = """
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
from pipelines.data import open_dataset


def serve_test_split(job):
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


def judge_generated(job):
    generate = tf.saved_model.load(job["generator"]).signatures["serving_default"]
    classify = tf.saved_model.load(job["evaluator"]).signatures["serving_default"]
    latent_size = generate.structured_input_signature[1]["latent"].shape[-1]
    rng = np.random.default_rng(job["seed"] + 1)
    latent = rng.standard_normal((job["count"], latent_size)).astype(np.float32)
    labels = np.arange(job["count"]) % job["classes"]
    (pixels,) = generate(latent=tf.constant(latent), labels=tf.constant(labels, tf.int32)).values()
    (probabilities,) = classify(**{next(iter(classify.structured_input_signature[1])): pixels / 255}).values()
    np.savez(job["out"], labels=labels, predicted=probabilities.numpy().argmax(axis=-1))


for job in json.loads(sys.argv[1]):
    (judge_generated if "generator" in job else serve_test_split)(job)
"""


@dataclass
class Served:
    """A pipeline run, and its SavedModel's outputs on the prepared test split (another process)."""

    uri: str
    runs: dict  # stage -> mlflow Run
    output: str  # what `deeparch run` printed
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


@dataclass
class Judged:
    """A conditional GAN's logged conditional accuracy, and what its exported evaluator made of
    its exported generator's samples (another process)."""

    logged: float
    labels: np.ndarray
    predicted: np.ndarray


def _pipeline(folder: Path, experiment: str, *overrides: str) -> tuple[str, dict, str]:
    """`deeparch run -e experiment overrides` in a store of its own; (store URI, runs by stage, output)."""
    with shared_store(folder) as uri:
        status, output, error = run_cli("run", "-e", experiment, *overrides, "--out", str(folder / "served"))
    assert status == 0, error
    return uri, {run.data.tags["stage"]: run for run in all_runs(uri)}, output


def _gan_job(gan_run: GanRun, out: Path) -> tuple[dict, float]:
    """The generator job of `gan_run` (its evaluator exported beside its generator), and the
    conditional accuracy its evaluate run logged."""
    assert gan_run.status == 0, gan_run.error
    runs = {
        (run.data.tags["architecture"], run.data.tags["stage"]): run
        for run in all_runs(gan_run.uri)
        if "stage" in run.data.tags
    }
    evaluate, train = runs["gan", "evaluate"], runs["gan", "train"]
    evaluator = gan_run.export.parent / "evaluator"
    with pytest.MonkeyPatch.context() as patch:
        use_store(gan_run.uri, patch)
        status, _, error = run_cli(
            "export", "--run", evaluate.data.tags["evaluator_run_id"], "--out", str(evaluator)
        )
    assert status == 0, error
    job = {
        "generator": str(gan_run.export),
        "evaluator": str(evaluator),
        "seed": int(train.data.params["seed"]),
        "count": GAN_GENERATED_SAMPLES,
        "classes": int(runs["gan", "prepare"].data.params["dataset.num_classes"]),
        "out": str(out),
    }
    return job, evaluate.data.metrics["conditional_accuracy"]


def _served(folder: Path, pipelines: dict[str, tuple[str, ...]], gan_run: GanRun) -> dict[str, Any]:
    """Each of `pipelines` (name -> experiment and overrides) run prepare to export once; then one
    process reloads their SavedModels and serves the test splits, and judges `gan_run`'s samples."""
    runs = {name: _pipeline(folder / name, *command) for name, command in pipelines.items()}
    jobs = [
        {
            "prepared_path": stages["prepare"].data.params["dataset.prepared_path"],
            "export_path": stages["export"].data.tags["export_path"],
            "out": str(folder / f"{name}.npz"),
        }
        for name, (_, stages, _) in runs.items()
    ]
    gan_job, gan_logged = _gan_job(gan_run, folder / "gan.npz")
    result = subprocess.run(
        [sys.executable, "-c", SERVE_SAVED_MODELS, json.dumps([*jobs, gan_job])],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served: dict[str, Any] = {}
    for name, (uri, stages, output) in runs.items():
        arrays = np.load(folder / f"{name}.npz", allow_pickle=True)
        served[name] = Served(
            uri,
            stages,
            output,
            arrays["outputs"].astype(np.float64),
            arrays["targets"],
            arrays["train_targets"],
            arrays["last_past"],
            arrays["class_names"].tolist(),
        )
    judged = np.load(folder / "gan.npz")
    served["gan"] = Judged(gan_logged, judged["labels"], judged["predicted"])
    return served


@pytest.fixture(scope="module")
def served(tmp_path_factory, gan_run: GanRun) -> Iterator[dict[str, Any]]:
    """A digits classifier, a CSV regression, a CSV forecast (horizon 3) and a CSV text classifier,
    served; and the conditional GAN of test_gan_pipeline (conftest's `gan_run`), judged."""
    folder = tmp_path_factory.mktemp("metric-values")
    prices = _table_csv(folder / "prices.csv")
    sales = _series_csv(folder / "sales.csv")
    reviews = _reviews_csv(folder / "reviews.csv")
    yield _served(
        folder,
        {
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
            "text": (
                "lstm-text",
                "data.source=csv",
                f"data.path={reviews}",
                "data.target=sentiment",
                *TINY_LSTM,
                # One direction: the numbers checked are the same, and tracing a bidirectional
                # LSTM's training step took 4 s of this 12 s run.
                "model.bidirectional=false",
            ),
        },
        gan_run,
    )


@pytest.fixture
def model(served: dict[str, Any], name: str) -> Served:
    """The served run the test's `name` parameter names."""
    return served[name]


CLASSIFIERS = ["classifier", "text"]
REGRESSIONS = ["regressor", "forecast"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_accuracy_and_macro_f1_are_those_of_the_saved_models_test_predictions(model):
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
def test_loss_is_the_mean_cross_entropy_of_the_test_labels(model):
    # Keras' cross-entropy clips probabilities to [1e-7, 1 - 1e-7]; none of these is that close.
    true_class = model.outputs[np.arange(len(model.targets)), model.targets]
    assert 1e-7 < true_class.min() and true_class.max() < 1 - 1e-7
    expected = -np.mean(np.log(true_class))
    assert model.logged["test_loss"] == pytest.approx(expected, rel=RELATIVE)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_confusion_matrix_counts_true_classes_by_row_and_predictions_by_column(model):
    logged = model.artifact("confusion_matrix.json")
    assert logged["classes"] == model.class_names
    expected = sk.confusion_matrix(model.targets, model.predictions, labels=range(len(model.class_names)))
    np.testing.assert_array_equal(logged["matrix"], expected)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_per_class_table_holds_each_class_precision_recall_f1_and_support(model):
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
def test_mse_mae_and_rmse_are_those_of_the_saved_models_test_predictions(model):
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
def test_baseline_mse_is_that_of_always_predicting_the_train_targets_mean(model):
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


def test_conditional_accuracy_is_that_of_the_exported_generator_judged_by_the_exported_evaluator(served):
    gan = served["gan"]
    assert len(gan.labels) == GAN_GENERATED_SAMPLES
    assert gan.logged == pytest.approx(np.mean(gan.predicted == gan.labels), rel=1e-6)


# --- The regression, the forecast and the text classifier as a user's own CSV data


def test_csv_float_target_is_a_regression_with_mae_and_rmse(served):
    runs = served["regressor"].runs
    assert runs["prepare"].data.params["dataset.task"] == "regression"
    assert {"test_mae", "test_rmse", "test_mse"} <= set(runs["evaluate"].data.metrics)
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5


def test_csv_forecast_logs_the_naive_baseline_and_a_forecast_plot(served):
    forecast = served["forecast"]
    runs = forecast.runs
    assert runs["prepare"].data.params["dataset.input_shape"] == "[12, 1]"
    assert runs["prepare"].data.params["dataset.task"] == "forecast"
    metrics = runs["evaluate"].data.metrics
    assert {"test_mae", "test_rmse", "test_naive_mae", "test_naive_rmse"} <= set(metrics)
    artifacts = mlflow.MlflowClient(forecast.uri).list_artifacts(runs["evaluate"].info.run_id)
    assert "forecast.png" in {artifact.path for artifact in artifacts}
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5


def test_own_data_runs_land_in_an_experiment_named_after_the_architecture_and_the_data(served):
    regression = served["regressor"]
    client = mlflow.MlflowClient(regression.uri)
    assert client.get_experiment_by_name("mlp-digits") is None
    experiment = client.get_experiment_by_name("mlp-prices")
    names = {run.info.run_name for run in client.search_runs([experiment.experiment_id])}
    assert names == {
        "mlp-prices",
        *(f"mlp-prices/{stage}" for stage in ("prepare", "train", "evaluate", "export")),
    }
    # A regression's headline is its MSE and MAE.
    metrics = regression.runs["evaluate"].data.metrics
    assert f"MSE {metrics['test_mse']:.4g}, MAE {metrics['test_mae']:.4g}" in regression.output


def test_a_shipped_experiment_pointed_at_a_forecast_drops_its_augmentation_and_says_so(served):
    forecast = served["forecast"]
    notes = [line for line in forecast.output.splitlines() if "augment" in line]
    assert notes == [
        "lstm-sales: dropped lstm-mnist1d's train.augment_shift=5 train.augment_scale=0.1 (a forecast "
        "reads its windows in time order, which circular shifts and amplitude scaling break)"
    ]
    train = forecast.runs["train"]
    assert (train.data.params["train.augment_shift"], train.data.params["train.augment_scale"]) == (
        "0",
        "0.0",
    )
    evaluate = forecast.runs["evaluate"].data.metrics
    headline = f"RMSE {evaluate['test_rmse']:.4g} (naive forecast {evaluate['test_naive_rmse']:.4g})"
    assert headline in forecast.output


def test_csv_text_column_runs_all_stages_and_the_saved_model_reads_raw_strings(served, monkeypatch):
    text = served["text"]
    use_store(text.uri, monkeypatch)
    prepare, train, evaluate = (text.runs[stage] for stage in ("prepare", "train", "evaluate"))
    assert prepare.data.params["dataset.features"] == "['review']", "the id column is not read"
    assert prepare.data.params["dataset.input_shape"] == "[]"
    assert train.data.params["data.text_column"] == "auto"
    assert train.data.tags["mlflow.runName"].startswith("lstm-reviews"), "own data, own experiment name"
    assert "best_epoch" in train.data.metrics, "lstm-text restores its best epoch"
    examples = text.artifact("examples.json")
    shown = examples["right"] + examples["wrong"]
    assert shown and {"text", "label", "predicted", "confidence"} <= set(shown[0])
    assert all(isinstance(example["text"], str) and example["text"] for example in shown)
    assert text.runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5

    texts = ["the plot was superb", "a sentence of words it never saw: zyzzyva"]
    keras_model = mlflow.tensorflow.load_model(train.data.tags["model_uri"])
    exported = Path(text.runs["export"].data.tags["export_path"])
    np.testing.assert_allclose(_serve(exported, texts), np.asarray(keras_model(np.array(texts))), atol=1e-5)
    logged = mlflow.pyfunc.load_model(train.data.tags["model_uri"])
    assert np.asarray(logged.predict(np.array(texts, dtype=object))).shape == (2, 2)
