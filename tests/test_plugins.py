"""A user's own model builder named in an experiment file (`model: {builder: mod:fn, params: ...}`):
trained, evaluated, exported, swept, tuned and promoted like a built-in family; refused up front
when it cannot be used.

The tests share one store that starts with one pipeline run of a copy of the example experiment
(examples/residual-mlp-digits.yaml beside its examples/my_models.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from models import registry
from pipelines.builders import checked_params

from .conftest import TINY, all_runs, assert_each_refused_before_any_run, run_cli, shared_store, use_store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Builders that go wrong in each way a user's can, beside an experiment that names the first.
BROKEN_BUILDERS = """
import keras


def needs_width(spec, width: int):
    inputs = keras.Input(shape=spec.input_shape)
    outputs = keras.layers.Dense(spec.num_classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def returns_text(spec):
    return "a model, honest"


def raises(spec):
    raise ValueError("this builder wants 28x28 images")
"""
BROKEN_EXPERIMENT = """
name: broken-digits
data: {name: digits}
model:
  builder: broken_builders:needs_width
  params: {width: 16}
"""


@dataclass
class PluginProject:
    """A folder holding a copy of the example builder module and its experiment, and the store
    where that experiment ran once."""

    uri: str
    experiment: str
    module: Path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[PluginProject]:
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "project").mkdir()
    for name in ("my_models.py", "residual-mlp-digits.yaml"):
        shutil.copy(EXAMPLES / name, folder / "project" / name)
    experiment = str(folder / "project" / "residual-mlp-digits.yaml")
    with shared_store(folder) as uri:
        status, _, error = run_cli("run", "-e", experiment, *TINY)
        assert status == 0, error
        yield PluginProject(uri, experiment, folder / "project" / "my_models.py")


@pytest.fixture
def plugin(project: PluginProject, monkeypatch: pytest.MonkeyPatch) -> PluginProject:
    use_store(project.uri, monkeypatch)
    return project


def _runs(uri: str, stage: str, **tags: str) -> list:
    return [
        run
        for run in all_runs(uri)
        if run.data.tags.get("stage") == stage and all(run.data.tags.get(k) == v for k, v in tags.items())
    ]


def test_a_custom_builder_runs_every_stage_and_its_params_are_run_params(plugin):
    (pipeline,) = _runs(plugin.uri, "pipeline")
    assert pipeline.info.status == "FINISHED"
    assert pipeline.data.tags["architecture"] == "my_models:build_residual_mlp"
    assert pipeline.data.params["model.params.width"] == "64"
    assert pipeline.data.params["model.params.blocks"] == "2"
    assert pipeline.data.params["model.path"] == str(plugin.module.parent)
    for stage in ("prepare", "train", "evaluate", "export"):
        (run,) = [r for r in all_runs(plugin.uri) if r.info.run_id == pipeline.data.tags[f"{stage}_run_id"]]
        assert run.info.status == "FINISHED", stage
    assert 0.0 <= pipeline.data.metrics["test_accuracy"] <= 1.0
    assert (Path(pipeline.data.tags["export_path"]) / "saved_model.pb").is_file()


def test_evaluate_export_and_promote_read_a_custom_model_from_its_train_run(plugin, cli, tmp_path):
    train_run_id = _runs(plugin.uri, "pipeline")[-1].data.tags["train_run_id"]
    status, output, error = cli("evaluate", "--run", train_run_id)
    assert status == 0, error
    assert "test_accuracy" in output
    status, output, error = cli(
        "export", "--run", train_run_id, "--out", str(tmp_path / "saved"), "--register", "mine"
    )
    assert status == 0, error
    assert (tmp_path / "saved" / "saved_model.pb").is_file()
    status, output, error = cli("promote", "mine", "--version", "1")
    assert status == 0, error
    assert "now the champion" in output


@pytest.mark.slow  # make test's time budget: three runs (the stage cache itself: test_cache.py)
def test_an_edited_builder_trains_again_and_an_unchanged_one_is_reused(plugin, cli):
    status, output, _ = cli("run", "-e", plugin.experiment, *TINY)
    assert status == 0
    assert "reused train" in output
    source = plugin.module.read_text()
    plugin.module.write_text(source + "\n# an edit: the builder's source is part of what it trains\n")
    status, output, error = cli("run", "-e", plugin.experiment, *TINY)
    assert status == 0, error
    assert "reused prepare" in output and "reused train" not in output
    status, output, _ = cli("run", "-e", plugin.experiment, *TINY)
    assert "reused train" in output


@pytest.mark.slow  # make test's time budget: a GAN's own train_step runs every stage in test_gan_pipeline
def test_a_model_subclass_with_its_own_train_step_runs_every_stage(plugin, cli):
    builder = "model.builder=my_models:build_gradient_norm_mlp"
    status, output, error = cli("run", "-e", plugin.experiment, *TINY, builder)
    assert status == 0, error
    (train,) = _runs(plugin.uri, "train", architecture="my_models:build_gradient_norm_mlp")
    assert train.data.metrics["gradient_norm"] > 0.0  # logged by its own train_step
    (pipeline,) = _runs(plugin.uri, "pipeline", architecture="my_models:build_gradient_norm_mlp")
    assert pipeline.info.status == "FINISHED"
    assert (Path(pipeline.data.tags["export_path"]) / "saved_model.pb").is_file()
    status, _, error = cli("evaluate", "--run", train.info.run_id)  # reloads the subclass
    assert status == 0, error


# make test's time budget: in make test, the example script (test_api.py) runs two builder params
# given as overrides and compares them.
@pytest.mark.slow
def test_a_sweep_over_builder_params_skips_the_finished_point_and_compares_them(plugin, cli):
    status, output, error = cli("sweep", "-e", plugin.experiment, *TINY, "model.params.width=64,32")
    assert status == 0, error
    assert "skipped model.params.width=64" in output
    sweep_run_id = _runs(plugin.uri, "sweep")[0].info.run_id
    status, output, error = cli("compare", "--sweep", sweep_run_id)
    assert status == 0, error
    assert "model.params.width" in output


@pytest.mark.slow  # make test's time budget: as the sweep above
def test_a_two_trial_tune_searches_the_builder_params(plugin, cli):
    status, output, error = cli(
        "tune", "-e", plugin.experiment, *TINY, "--trials", "2", "--sampler", "random", "--pruner", "none"
    )
    assert status == 0, error
    (tune,) = _runs(plugin.uri, "tune")
    trials = _runs(plugin.uri, "pipeline", tune_run_id=tune.info.run_id)
    assert len(trials) == 2
    assert {trial.data.params["model.params.width"] for trial in trials} <= {"32", "64", "128"}


@pytest.fixture
def broken(store: str, tmp_path: Path) -> str:
    """An experiment file beside a module of broken builders; returns its path."""
    (tmp_path / "broken_builders.py").write_text(BROKEN_BUILDERS)
    experiment = tmp_path / "broken.yaml"
    experiment.write_text(BROKEN_EXPERIMENT)
    return str(experiment)


def test_a_builder_that_cannot_be_used_is_refused_in_one_line_before_any_run(store, cli, tmp_path, broken):
    cases = {
        "wrong type": (
            lambda _: ["model.params.width=wide"],
            ["model.params.width: 'wide' is not allowed", "int"],
        ),
        "unknown param": (lambda _: ["model.params.depth=3"], ["model.params.depth: unknown parameter"]),
        "missing param": (lambda _: ["model.params={}"], ["model.params.width: missing"]),
        "missing module": (
            lambda _: ["model.builder=nowhere:build"],
            ["model.builder: 'nowhere:build'", "nowhere"],
        ),
        "not a model": (
            lambda _: ["model.builder=broken_builders:returns_text"],
            ["model.builder:", "returned a str, not a keras.Model"],
        ),
        "raises": (
            lambda _: ["model.builder=broken_builders:raises"],
            ["raised ValueError: this builder wants"],
        ),
    }
    errors = []

    def invoke(*args: str):
        status, output, error = cli(*args)
        errors.append(error)
        return status, output, error

    assert_each_refused_before_any_run(store, invoke, tmp_path, broken, cases, extra=TINY)
    for error in errors:
        problems = [line for line in error.splitlines() if "model." in line]
        assert len(problems) == 1, error


def test_every_built_in_family_takes_its_config_through_the_same_signature_check():
    from pipelines.config import load_experiment

    for experiment in ("mlp-digits", "cnn-mnist1d", "lstm-adding"):
        config = load_experiment(experiment)
        builder = registry.get_builder(config.architecture)
        problems, _ = checked_params(config.architecture, builder, config.hparams())
        assert problems == [], experiment
