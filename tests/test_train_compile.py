"""How the train stage compiles a model: XLA where it helps, never where it makes training crawl."""

from __future__ import annotations

import pytest

import models
from models.spec import DataSpec
from pipelines.stages.train import XLA_OFF_REASON, random_layers

from .conftest import TINY, all_runs

DIGITS = [*TINY, "model.units=[16]", "train.jit_compile=true"]


def _train_run(uri: str):
    return next(run for run in all_runs(uri) if run.data.tags.get("stage") == "train")


# That XLA stays on without random layers: test_pipeline's stage-by-stage train run has no xla_off tag.
# make test's time budget: make test finds the random layers below without training.
@pytest.mark.slow
def test_xla_is_off_on_a_cpu_for_a_model_with_dropout_and_says_so(store, cli):
    # XLA's random numbers on a CPU made a cnn-mnist1d epoch with dropout 0.1 take 7.8 s, not 0.5 s.
    status, output, error = cli("train", "-e", "mlp-digits", *DIGITS, "model.dropout=0.2")
    assert status == 0, error
    assert f"note: train.jit_compile: {XLA_OFF_REASON} (dropout_0)" in output
    run = _train_run(store)
    assert run.data.tags["xla_off"] == XLA_OFF_REASON
    assert run.data.params["train.jit_compile"] == "True"  # what was asked stays on record


@pytest.mark.parametrize(
    ("architecture", "hparams", "expected"),
    [
        ("lstm", {}, []),  # its cells hold a seed generator, but drop nothing
        ("lstm", {"dropout": 0.2}, ["dropout_0"]),
        ("cnn", {"dropout": 0.1}, ["dropout_0", "dropout_1", "dense_dropout_0"]),
        ("cnn", {}, []),
    ],
)
def test_random_layers_are_those_that_draw_random_numbers_in_training(architecture, hparams, expected):
    spec = DataSpec((40, 1), num_classes=10)
    assert random_layers(models.build(architecture, spec, **hparams)) == expected
