"""`pipelines.api`: the CLI's operations from Python, returning results and raising errors, several
in one process (a notebook's), and the example script that uses it."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pytest

from pipelines import api

from .conftest import TINY, all_runs, shared_store, use_store

if TYPE_CHECKING:
    from pipelines.runner import PipelineResult

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_EXPERIMENT = EXAMPLES / "residual-mlp-digits.yaml"
TINY_MAPPING = {"data.max_examples": 200, "train.epochs": 1, "train.batch_size": 32}

FAILING_BUILDER = """
import keras


@keras.saving.register_keras_serializable(package="tests")
class FailingModel(keras.Model):
    def train_step(self, data):
        raise RuntimeError("this train_step fails on purpose")


def build(spec):
    inputs = keras.Input(shape=spec.input_shape)
    outputs = keras.layers.Dense(spec.num_classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return FailingModel(inputs, outputs)
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Iterator[tuple[str, PipelineResult, PipelineResult]]:
    """A store where the API ran a built-in experiment (overrides as a mapping) and the example's
    custom one (as key=value strings), one after the other in this process."""
    with shared_store(tmp_path_factory.mktemp("api")) as uri:
        built_in = api.run("mlp-digits", TINY_MAPPING)
        custom = api.run(EXAMPLE_EXPERIMENT, TINY)
        yield uri, built_in, custom


@pytest.fixture
def store(two_runs, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_store(two_runs[0], monkeypatch)


def test_two_experiments_run_in_one_process_and_return_their_results(store, two_runs):
    _, built_in, custom = two_runs
    runs = {run.info.run_id: run for run in all_runs(store)}
    for result, architecture in ((built_in, "mlp"), (custom, "my_models:build_residual_mlp")):
        pipeline = runs[result.run_id]
        assert pipeline.info.status == "FINISHED"
        assert pipeline.data.tags["architecture"] == architecture
        assert result.metrics == pytest.approx({k: pipeline.data.metrics[k] for k in result.metrics})
        assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
        assert result.model_uri == pipeline.data.tags.get("model_uri", result.trained.model_uri)
        assert (result.export_path / "saved_model.pb").is_file()
    assert mlflow.active_run() is None


@pytest.mark.slow  # make test's time budget: test_prepared_data trains twice to the same numbers
def test_a_second_training_in_the_same_process_gives_the_same_numbers(store, two_runs):
    first = two_runs[2]
    again = api.run(EXAMPLE_EXPERIMENT, TINY, force=["train"])
    assert again.trained.run_id != first.trained.run_id
    assert again.metrics == first.metrics


def test_stages_one_at_a_time_take_each_others_results(store, two_runs, tmp_path):
    prepared = api.prepare("mlp-digits", TINY)
    assert prepared.dataset.sizes()["train"] > 0
    # `api.train` as `deeparch train` calls it: test_pipeline's stage-by-stage test. Here the built-in
    # run's training is handed on (make test's time budget: a training less).
    trained = two_runs[1].trained
    evaluated = api.evaluate(trained)
    assert set(evaluated.metrics) >= {"test_accuracy", "test_loss"}
    exported = api.export(trained.run_id, tmp_path / "saved")
    assert exported.path == (tmp_path / "saved").resolve()
    assert (exported.path / "saved_model.pb").is_file() and exported.parity < 1e-4


def test_invalid_input_raises_instead_of_exiting(store):
    with pytest.raises(api.ConfigError, match="train.epochs"):
        api.run("mlp-digits", {"train.epochs": 0})
    with pytest.raises(api.ConfigError, match="one string"):
        api.run("mlp-digits", "train.epochs=1")


def test_a_failure_inside_a_run_raises_marks_it_failed_and_the_next_call_works(store, tmp_path):
    (tmp_path / "failing_builder.py").write_text(FAILING_BUILDER)
    (tmp_path / "failing.yaml").write_text(
        "name: failing\ndata: {name: digits}\nmodel: {builder: failing_builder:build}\n"
    )
    with pytest.raises(RuntimeError, match="fails on purpose"):
        api.run(tmp_path / "failing.yaml", TINY)
    assert mlflow.active_run() is None
    failed = [run for run in all_runs(store) if run.data.tags.get("experiment") == "failing"]
    assert {
        run.data.tags["stage"]: run.info.status for run in failed if run.data.tags["stage"] != "prepare"
    } == {
        "pipeline": "FAILED",
        "train": "FAILED",
    }
    assert all("fails on purpose" in run.data.tags["error"] for run in failed if run.info.status == "FAILED")
    assert api.prepare("mlp-digits", TINY).run_id


# make test's time budget: make test runs the example's experiment through the API above.
@pytest.mark.slow
def test_the_example_script_runs_compares_and_exports(store, capsys):
    script = runpy.run_path(str(EXAMPLES / "from_python.py"))
    exported = script["main"](TINY)
    assert (exported / "saved_model.pb").is_file()
    output = capsys.readouterr().out
    assert "width 32: test accuracy" in output and "width 64: test accuracy" in output
    assert "model.params.width" in output  # the comparison's differing column
