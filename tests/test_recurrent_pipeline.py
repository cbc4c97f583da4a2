"""The recurrent family in the pipeline: rnn and lstm on digits, MNIST-1D, adding and raw text."""

from __future__ import annotations

import csv
import io

import mlflow
import numpy as np
import pytest

from pipelines.config import ConfigError, DataConfig, load_experiment, load_experiments
from pipelines.data import load_dataset
from pipelines.datasets.adding import adding_problem

from .conftest import TINY, all_runs

# A short adding problem and a small stack keep each end-to-end run to a few seconds.
SHORT = ["data.sequence_length=12", "model.units=[16]"]


def _runs_by_stage(uri: str) -> dict[str, list]:
    runs: dict[str, list] = {}
    for run in all_runs(uri):
        runs.setdefault(run.data.tags.get("stage"), []).append(run)
    return runs


# The six shipped pairs run in `make test-slow` (make test's time budget); `make test` trains lstm
# on a classification through lstm-text and on a forecast through lstm-mnist1d
# (test_metric_values.py), and builds, fits and exports rnn (test_recurrent_models.py); the
# adding sequences' targets are checked below.
SHIPPED_RECURRENT = [
    pytest.param(architecture, dataset, marks=[pytest.mark.slow], id=f"{architecture}-{dataset}")
    for architecture, dataset in [
        ("lstm", "mnist1d"),
        ("rnn", "adding"),
        ("rnn", "digits"),
        ("lstm", "digits"),
        ("rnn", "mnist1d"),
        ("lstm", "adding"),
    ]
]


@pytest.mark.parametrize(("architecture", "dataset"), SHIPPED_RECURRENT)
def test_shipped_recurrent_experiment_runs_prepare_to_export(store, cli, architecture, dataset):
    status, output, _ = cli("run", "-e", f"{architecture}-{dataset}", *TINY, *SHORT)
    assert status == 0
    runs = _runs_by_stage(store)
    assert {stage: [r.info.status for r in found] for stage, found in runs.items()} == {
        stage: ["FINISHED"] for stage in ("pipeline", "prepare", "train", "evaluate", "export")
    }
    assert runs["train"][0].data.tags["architecture"] == architecture
    assert runs["export"][0].data.metrics["parity_max_abs_diff"] <= 1e-5
    evaluated = runs["evaluate"][0].data.metrics
    if dataset == "adding":
        assert {"test_mse", "test_baseline_mse"} <= set(evaluated) and "MSE " in output
    else:
        assert "test_accuracy" in evaluated


def test_adding_sequences_have_one_marker_per_half_and_the_marked_sum_as_target():
    dataset = load_dataset(DataConfig(name="adding", sequence_length=12))
    assert dataset.sizes() == {"train": 10_000, "validation": 1_000, "test": 1_000}
    assert dataset.spec.input_shape == (12, 2)
    assert (dataset.spec.task, dataset.spec.num_outputs) == ("regression", 1)
    for split in map(dataset.arrays, dataset.splits):
        values, markers = split.x[..., 0], split.x[..., 1]
        assert set(np.unique(markers)) == {0.0, 1.0}
        assert (markers[:, :6].sum(axis=1) == 1).all() and (markers[:, 6:].sum(axis=1) == 1).all()
        assert ((0.0 <= values) & (values < 1.0)).all()
        np.testing.assert_allclose(split.y, (values * markers).sum(axis=1), rtol=1e-6)
    train_targets = dataset.arrays("train").y
    assert np.mean((train_targets - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)


def test_adding_baseline_mse_of_predicting_one_is_a_sixth():
    _, targets = adding_problem(200_000, 50, seed=0)
    assert np.mean((targets - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.002)


@pytest.mark.slow  # make test's time budget: generates another 12,000 sequences (T=16)
def test_each_adding_sequence_length_is_its_own_seeded_dataset():
    short = load_dataset(DataConfig(name="adding", sequence_length=12))
    longer = load_dataset(DataConfig(name="adding", sequence_length=16))
    assert longer.spec.input_shape == (16, 2)
    assert short.digest != longer.digest
    assert short.digest == load_dataset(DataConfig(name="adding", sequence_length=12)).digest


# make test's time budget: the probe's callback is checked below without the CLI.
@pytest.mark.slow
def test_gradient_probe_logs_norm_per_step_as_plot_table_and_ratio(store, cli):
    status, _, _ = cli("train", "-e", "rnn-adding", *TINY, *SHORT, "train.gradient_probe_epochs=[0,1,7]")
    assert status == 0
    train = _runs_by_stage(store)["train"][0]
    client = mlflow.MlflowClient(store)
    assert {"gradient_flow.png", "gradient_flow.csv"} <= {
        a.path for a in client.list_artifacts(train.info.run_id)
    }
    table = mlflow.artifacts.load_text(f"runs:/{train.info.run_id}/gradient_flow.csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    # Epoch 7 lies beyond the one-epoch run, so it is skipped.
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == [(e, t) for e in (0, 1) for t in range(12)]
    assert all(float(r["norm"]) > 0 for r in rows)
    ratios = client.get_metric_history(train.info.run_id, "gradient_norm_ratio_first_to_last")
    assert sorted(m.step for m in ratios) == [0, 1]


def test_gradient_probe_of_a_resumed_run_keeps_the_probes_it_logged_before(store):
    from models.recurrent import build_rnn
    from models.spec import DataSpec
    from pipelines.callbacks import GradientFlowProbe

    x, y = adding_problem(16, 6, seed=0)
    model = build_rnn(DataSpec(input_shape=(6, 2), task="regression"), units=(4,))
    model.compile(optimizer="adam", loss="mse")  # a loss by name, as a user may compile it
    with mlflow.start_run() as run:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[GradientFlowProbe(x, y, [0, 1, 2])])
        # A resumed fit gets a new callback and starts after the epochs already done.
        model.fit(x, y, initial_epoch=1, epochs=2, verbose=0, callbacks=[GradientFlowProbe(x, y, [0, 1, 2])])
    table = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/gradient_flow.csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == [(e, t) for e in (0, 1, 2) for t in range(6)]


def test_vanishing_gradients_suite_gives_rnn_and_lstm_the_same_budget_with_the_probe_on():
    rnn, lstm = load_experiments("vanishing-gradients")
    assert (rnn.architecture, lstm.architecture) == ("rnn", "lstm")
    assert rnn.data == lstm.data and rnn.data.name == "adding"
    assert rnn.train == lstm.train and rnn.train.gradient_probe_epochs


@pytest.mark.slow  # make test's time budget (README, Development)
def test_reference_implementation_trains_through_the_cli(store, cli):
    reference = ["model.units=[8]", "model.bidirectional=false", "model.implementation=reference"]
    status, _, _ = cli("train", "-e", "lstm-digits", *TINY, *reference)
    assert status == 0
    train = _runs_by_stage(store)["train"][0]
    assert train.data.params["model.implementation"] == "reference"
    assert np.isfinite(train.data.metrics["loss"])


def test_reference_gru_is_refused_naming_field_value_and_allowed():
    with pytest.raises(ConfigError, match=r"model\.cell: 'gru' .* allowed: lstm"):
        load_experiment("lstm-mnist1d", ["model.implementation=reference"])


@pytest.mark.slow  # make test's time budget (README, Development)
def test_text_pipeline_adapts_a_vocabulary_and_exports_a_model_that_reads_raw_strings(store, cli, tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    text_run = ["data.name=imdb_reviews", "data.download=false", "train.epochs=1", "model.units=[8]"]
    text_run += ["train.augment_shift=0", "train.augment_scale=0"]  # lstm-digits shifts its images
    small_text = ["model.sequence_length=16", "model.embedding_dim=8", "model.max_tokens=100"]
    with tfds.testing.mock_data(num_examples=40):
        status, _, _ = cli(
            "run", "-e", "lstm-digits", *text_run, *small_text, "--out", str(tmp_path / "text")
        )
    assert status == 0
    runs = _runs_by_stage(store)
    prepare, export = runs["prepare"][0], runs["export"][0]
    assert prepare.data.params["dataset.name"] == "imdb_reviews"
    assert "samples.json" in {a.path for a in mlflow.MlflowClient(store).list_artifacts(prepare.info.run_id)}
    assert export.data.metrics["parity_max_abs_diff"] <= 1e-5

    serve = tf.saved_model.load(str(tmp_path / "text")).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    texts = tf.constant(["a film i would watch again", "words the vocabulary never saw: zyzzyva"])
    (probabilities,) = serve(**{input_name: texts}).values()
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, atol=1e-5)


def test_text_dataset_with_a_non_recurrent_model_is_refused_before_any_run(store, cli):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        status, _, error = cli("run", "-e", "mlp-digits", "data.name=imdb_reviews", "data.download=false")
    assert status == 2
    assert "model.architecture: 'mlp'" in error and "allowed for text: rnn, lstm" in error
    assert "Traceback" not in error
    assert all_runs(store) == []


def test_augmenting_text_is_refused_naming_the_fields(store, cli):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        status, _, error = cli(
            "run",
            "-e",
            "lstm-digits",
            "data.name=imdb_reviews",
            "data.download=false",
            "train.augment_shift=2",
            "train.augment_scale=0",
        )
    assert status == 2
    assert "train.augment_shift/augment_scale: 2/0.0" in error and "is text" in error
    assert "Traceback" not in error
    assert all_runs(store) == []
