"""The GAN through the pipeline: adversarial training, scores against real data, generator export."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from .conftest import TINY, SharedRun, all_runs, run_cli, shared_store, use_store

GENERATED_SAMPLES = 256
TINY_EVALUATOR = """
name: tiny-evaluator
data: {name: digits}
model: {architecture: cnn, filters: [8], dense_units: [16]}
train: {epochs: 15, batch_size: 32, learning_rate: 1.0e-2}
"""


@dataclass
class GanRun(SharedRun):
    scipy_warnings: list
    export: Path


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Iterator[GanRun]:
    """One conditional GAN run, prepare to export, scored by a tiny evaluator: the tests read it."""
    import scipy.linalg

    folder = tmp_path_factory.mktemp("gan")
    evaluator = folder / "tiny-evaluator.yaml"
    evaluator.write_text(TINY_EVALUATOR)
    with shared_store(folder / "store") as uri:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status, output, error = run_cli(
                "run",
                "-e",
                "gan-digits",
                *TINY,
                "train.sample_every=1",
                f"evaluate.generated_samples={GENERATED_SAMPLES}",
                f"evaluate.evaluator={evaluator}",
                "--out",
                str(folder / "generator"),
            )
        linalg = [w for w in caught if issubclass(w.category, scipy.linalg.LinAlgWarning)]
        yield GanRun(uri, status, output, error, linalg, folder / "generator")


def _by_stage(uri: str, architecture: str) -> dict[str, list]:
    runs: dict[str, list] = {}
    for run in all_runs(uri):
        if run.data.tags.get("architecture") == architecture:
            runs.setdefault(run.data.tags.get("stage"), []).append(run)
    return runs


def test_conditional_gan_runs_prepare_to_export_and_is_scored_by_an_evaluator_run(gan_run, cli, monkeypatch):
    assert gan_run.status == 0, gan_run.error
    store = use_store(gan_run.uri, monkeypatch)
    gan = _by_stage(store, "gan")
    train = gan["train"][0]
    for metric in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert metric in train.data.metrics
    evaluate = gan["evaluate"][0]
    for metric in ("frechet_distance", "real_frechet_distance", "classifier_score", "conditional_accuracy"):
        assert np.isfinite(evaluate.data.metrics[metric])
    evaluator_runs = _by_stage(store, "cnn")["train"]
    assert evaluate.data.tags["evaluator_run_id"] == evaluator_runs[0].info.run_id

    # Evaluating again reuses the finished evaluator run instead of training another.
    assert cli("evaluate", "--run", train.info.run_id)[0] == 0
    assert len(_by_stage(store, "cnn")["train"]) == 1


def test_a_gan_headline_is_its_conditional_accuracy_and_frechet_ratio_without_scipy_warnings(gan_run):
    assert gan_run.status == 0, gan_run.error
    assert gan_run.scipy_warnings == []
    gan = next(
        run
        for run in all_runs(gan_run.uri)
        if run.data.tags.get("stage") == "evaluate" and run.data.tags["architecture"] == "gan"
    )
    accuracy, ratio = gan.data.metrics["conditional_accuracy"], gan.data.metrics["frechet_ratio"]
    assert f"conditional accuracy {accuracy:.4f}, Fréchet ratio {ratio:.2f}" in gan_run.output


def test_exported_generator_takes_latents_and_labels_and_returns_pixel_values(gan_run):
    import tensorflow as tf

    assert gan_run.status == 0, gan_run.error
    export = _by_stage(gan_run.uri, "gan")["export"][0]
    assert export.data.metrics["parity_max_abs_diff"] <= 255 * 1e-5  # pixel values up to 255
    serve = tf.saved_model.load(str(gan_run.export)).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"latent", "labels"}
    (samples,) = serve(latent=tf.random.normal([3, 32]), labels=tf.constant([0, 1, 2], tf.int32)).values()
    assert samples.shape == (3, 8, 8, 1)
    assert float(tf.reduce_min(samples)) >= 0.0 and float(tf.reduce_max(samples)) <= 255.0


# In a fresh process, from the two SavedModels alone: the evaluate stage's generator inputs (latents
# drawn with seed + 1, labels cycling through the classes: pipelines.serving.generator_inputs)
# through the generator (pixel values, back to the [0, 1] the evaluator was trained on), then the
# evaluator; the share of samples whose most probable class is the label they were generated for.
CONDITIONAL_ACCURACY = """
import sys
import numpy as np
import tensorflow as tf

generator, evaluator, seed, count, classes = sys.argv[1:]
generate = tf.saved_model.load(generator).signatures["serving_default"]
classify = tf.saved_model.load(evaluator).signatures["serving_default"]
latent_size = generate.structured_input_signature[1]["latent"].shape[-1]
latent = np.random.default_rng(int(seed) + 1).standard_normal((int(count), latent_size)).astype(np.float32)
labels = np.arange(int(count)) % int(classes)
(pixels,) = generate(latent=tf.constant(latent), labels=tf.constant(labels, tf.int32)).values()
(probabilities,) = classify(**{next(iter(classify.structured_input_signature[1])): pixels / 255}).values()
print(np.mean(probabilities.numpy().argmax(axis=-1) == labels))
"""


# make test's time budget: a fresh process that imports TensorFlow (about 8 s of a worker).
@pytest.mark.slow
def test_conditional_accuracy_is_that_of_the_exported_generator_judged_by_the_exported_evaluator(
    gan_run, cli, monkeypatch
):
    assert gan_run.status == 0, gan_run.error
    store = use_store(gan_run.uri, monkeypatch)
    gan = _by_stage(store, "gan")
    evaluate, train = gan["evaluate"][0], gan["train"][0]
    evaluator = gan_run.export.parent / "evaluator"
    assert cli("export", "--run", evaluate.data.tags["evaluator_run_id"], "--out", str(evaluator))[0] == 0
    classes = gan["prepare"][0].data.params["dataset.num_classes"]
    arguments = [gan_run.export, evaluator, train.data.params["seed"], GENERATED_SAMPLES, classes]
    result = subprocess.run(
        [sys.executable, "-c", CONDITIONAL_ACCURACY, *map(str, arguments)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    recomputed = json.loads(result.stdout.strip().splitlines()[-1])
    assert evaluate.data.metrics["conditional_accuracy"] == pytest.approx(recomputed, rel=1e-6)


@pytest.mark.slow
def test_unconditional_gan_on_mnist1d_sequences(store, cli, tmp_path):
    evaluator = tmp_path / "evaluator.yaml"
    evaluator.write_text(TINY_EVALUATOR.replace("digits", "mnist1d"))
    status, _, _ = cli(
        "run",
        "-e",
        "gan-mnist1d",
        *TINY,
        "model.conditional=false",
        "evaluate.generated_samples=32",
        f"evaluate.evaluator={evaluator}",
    )
    assert status == 0
    evaluate = _by_stage(store, "gan")["evaluate"][0]
    metrics = evaluate.data.metrics
    assert "conditional_accuracy" not in metrics
    # An evaluator trained on 200 MNIST-1D sequences may not clear the floor; then nothing is scored.
    if "scores_withheld" in evaluate.data.tags:
        assert "frechet_distance" not in metrics and "evaluator_test_accuracy" in metrics
    else:
        assert np.isfinite(metrics["frechet_distance"])
