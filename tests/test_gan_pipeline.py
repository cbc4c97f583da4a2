"""The GAN through the pipeline: adversarial training, scores against real data, generator export.

The conditional run (`gan_run`, in conftest) is shared with test_metric_values.py, which recomputes
its conditional accuracy from the exported generator and evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import TINY, TINY_GAN_EVALUATOR, all_runs, use_store


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
    evaluator_runs = _by_stage(store, "mlp")["train"]
    assert evaluate.data.tags["evaluator_run_id"] == evaluator_runs[0].info.run_id

    # Evaluating again reuses the finished evaluator run instead of training another.
    assert cli("evaluate", "--run", train.info.run_id)[0] == 0
    assert len(_by_stage(store, "mlp")["train"]) == 1


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


@pytest.mark.slow
def test_unconditional_gan_on_mnist1d_sequences(store, cli, tmp_path):
    evaluator = tmp_path / "evaluator.yaml"
    evaluator.write_text(TINY_GAN_EVALUATOR.replace("digits", "mnist1d"))
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
