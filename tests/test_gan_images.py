"""gan-images on folders of pictures: a labelled folder (class sub-folders) and a flat one, through
the CLI; scores that are withheld when their judge cannot judge; each judge ranks planted bad
generators (noise, one repeated picture, blurred copies) below a good one (held-out real pictures)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from .conftest import SharedRun, all_runs, run_cli, shared_store

SIZE = 16
QUICK = [f"data.image_size=[{SIZE},{SIZE}]", "train.batch_size=16", "evaluate.generated_samples=64"]
# A labelled run's evaluator: a small CNN that learns colour classes in a few seconds.
QUICK_EVALUATOR = """
name: quick-evaluator
data: {source: images}
model: {architecture: cnn, filters: [8], dense_units: [16], global_pooling: average}
train: {epochs: 12, batch_size: 16, learning_rate: 1.0e-2}
"""


def draw_pictures(folder: Path, classes: dict[str, int], size: int = SIZE, seed: int = 0) -> Path:
    """PNG pictures of a disc or a square on a grey background: `classes` maps a sub-folder name
    (empty: the folder itself) to how many. Each class has its own hue, so a small classifier tells
    them apart; shapes vary in kind, place, size and brightness, and have sharp edges, so an
    autoencoder has something to learn and blurring shows."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    canvas = 4 * size  # drawn large, then shrunk: edges a pixel wide
    for index, (name, count) in enumerate(classes.items()):
        target = folder / name
        target.mkdir(parents=True, exist_ok=True)
        hue = np.roll(np.array([1.0, 0.3, 0.1]), index)
        for number in range(count):
            grey = int(rng.integers(0, 80))
            picture = Image.new("RGB", (canvas, canvas), (grey, grey, grey))
            radius = rng.uniform(0.15, 0.35) * canvas
            x, y = rng.uniform(radius, canvas - radius, 2)
            colour = tuple(int(v) for v in 255 * rng.uniform(0.6, 1.0) * hue)
            draw = ImageDraw.Draw(picture)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x - radius, y - radius, x + radius, y + radius), fill=colour)
            picture = picture.resize((size, size), Image.Resampling.BOX)
            picture.save(target / f"{name or 'picture'}_{number:03d}.png")
    return folder


def draw_noise_classes(folder: Path, classes: int, count: int, size: int = SIZE) -> Path:
    """Class sub-folders of uniform noise: no classifier can tell them apart."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for index in range(classes):
        (folder / f"class_{index}").mkdir(parents=True)
        for number in range(count):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"class_{index}" / f"{number:03d}.png")
    return folder


@dataclass
class FolderRun(SharedRun):
    export: Path

    def runs(self, stage: str) -> list:
        return [
            run
            for run in all_runs(self.uri)
            if run.data.tags.get("stage") == stage and run.data.tags.get("architecture") == "gan"
        ]


def _run_folder(folder: Path, data: Path, *overrides: str) -> FolderRun:
    with shared_store(folder / "store") as uri:
        status, output, error = run_cli(
            "run",
            "-e",
            "gan-images",
            f"data.path={data}",
            *QUICK,
            *overrides,
            "--out",
            str(folder / "generator"),
        )
    return FolderRun(uri, status, output, error, folder / "generator")


@pytest.fixture(scope="module")
def unjudgeable_run(tmp_path_factory) -> Iterator[FolderRun]:
    """A labelled folder whose classes are noise: the evaluator classifier stays near chance."""
    folder = tmp_path_factory.mktemp("unjudgeable")
    data = draw_noise_classes(folder / "pictures", classes=2, count=30)
    evaluator = folder / "quick-evaluator.yaml"
    evaluator.write_text(QUICK_EVALUATOR.replace("epochs: 12", "epochs: 2"))
    yield _run_folder(
        folder, data, "train.epochs=2", "train.sample_every=1", f"evaluate.evaluator={evaluator}"
    )


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory) -> Iterator[FolderRun]:
    """A folder of pictures without class sub-folders, one epoch."""
    folder = tmp_path_factory.mktemp("flat")
    data = draw_pictures(folder / "pictures", {"": 60})
    yield _run_folder(folder, data, "train.epochs=1")


@pytest.mark.slow  # make test's time budget: the `unjudgeable_run` (about 17 s of a worker)
def test_scores_of_an_evaluator_near_chance_are_withheld_with_a_line_and_a_tag(unjudgeable_run):
    assert unjudgeable_run.status == 0, unjudgeable_run.error
    (evaluate,) = unjudgeable_run.runs("evaluate")
    assert evaluate.data.tags["scores_withheld"] == "evaluator_near_chance"
    metrics = evaluate.data.metrics
    assert 0.0 <= metrics["evaluator_test_accuracy"] <= 1.0 and "evaluator_chance_accuracy" in metrics
    for withheld in ("frechet_distance", "real_frechet_distance", "frechet_ratio", "classifier_score"):
        assert withheld not in metrics
    assert "conditional_accuracy" not in metrics
    lines = [line for line in unjudgeable_run.output.splitlines() if "note: GAN scores withheld" in line]
    assert len(lines) == 1 and "chance" in lines[0]
    assert "scores withheld (evaluator skill" in unjudgeable_run.output  # the result table
    assert "Fréchet ratio" not in unjudgeable_run.output
    assert "conditional accuracy" not in unjudgeable_run.output


@pytest.mark.slow  # make test's time budget: the `unjudgeable_run` (about 17 s of a worker)
def test_a_labelled_folder_trains_a_conditional_gan_with_a_sample_grid_per_logged_epoch(unjudgeable_run):
    import mlflow

    assert unjudgeable_run.status == 0, unjudgeable_run.error
    (train,) = unjudgeable_run.runs("train")
    assert train.data.params["model.conditional"] == "auto"
    client = mlflow.MlflowClient(unjudgeable_run.uri)
    steps = sorted(int(m.step) for m in client.get_metric_history(train.info.run_id, "d_loss"))
    images = [a.path for a in client.list_artifacts(train.info.run_id, "images") if a.path.endswith(".png")]
    # MLflow names a stepped image <key>+step+<step>+timestamp+... (% in some versions).
    logged = [re.search(r"generated_samples[+%]step[+%](\d+)[+%]", path) for path in images]
    assert sorted(int(match.group(1)) for match in logged if match) == steps == [1, 2]
    (evaluate,) = unjudgeable_run.runs("evaluate")
    generated = {a.path for a in client.list_artifacts(evaluate.info.run_id, "generated")}
    assert generated == {"generated/final.png", "generated/interpolation.png"}


@pytest.mark.slow  # make test's time budget: the `unjudgeable_run` (about 17 s of a worker)
def test_exported_conditional_generator_returns_pictures_in_0_255(unjudgeable_run):
    import tensorflow as tf

    assert unjudgeable_run.status == 0, unjudgeable_run.error
    serve = tf.saved_model.load(str(unjudgeable_run.export)).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"latent", "labels"}
    (pictures,) = serve(latent=tf.random.normal([4, 64]), labels=tf.constant([0, 1, 0, 1])).values()
    assert pictures.shape == (4, SIZE, SIZE, 3)
    assert 0.0 <= float(tf.reduce_min(pictures)) and float(tf.reduce_max(pictures)) <= 255.0
    assert float(tf.reduce_max(pictures)) > 1.0  # pixel values, not [0, 1]


@pytest.mark.slow  # 30-45 s of a worker: make test keeps the labelled path and the classifier judge
def test_a_flat_folder_trains_an_unconditional_gan_scored_by_an_autoencoder(flat_run):
    import tensorflow as tf

    assert flat_run.status == 0, flat_run.error
    assert "no class sub-folders" in flat_run.output
    (evaluate,) = flat_run.runs("evaluate")
    assert evaluate.data.tags["gan_judge"] == "autoencoder"
    assert "scores_withheld" not in evaluate.data.tags
    metrics = evaluate.data.metrics
    assert metrics["evaluator_skill"] >= 0.5
    assert np.isfinite(metrics["frechet_distance"]) and "conditional_accuracy" not in metrics
    assert f"Fréchet ratio {metrics['frechet_ratio']:.2f}" in flat_run.output
    serve = tf.saved_model.load(str(flat_run.export)).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"latent"}
    (pictures,) = serve(latent=tf.random.normal([2, 64])).values()
    assert pictures.shape == (2, SIZE, SIZE, 3)


def test_a_classifier_on_a_flat_folder_is_refused_before_any_run(store, cli, tmp_path):
    data = draw_pictures(tmp_path / "pictures", {"": 12})
    status, _, error = cli("run", "-e", "cnn-images", f"data.path={data}", *QUICK[:1])
    assert status == 2
    assert "no class sub-folders" in error and "gan-images" in error and "Traceback" not in error
    status, _, error = cli(
        "run", "-e", "gan-images", f"data.path={data}", "model.conditional=true", *QUICK[:1]
    )
    assert status == 2 and "model.conditional" in error
    assert all(run.data.tags.get("stage") == "prepare" for run in all_runs(store)) or not all_runs(store)


# Planted generators: each judge must rank held-out real examples first.


def _planted(real: np.ndarray, rng: np.random.Generator, blur: float) -> dict[str, np.ndarray]:
    """Bad generators' samples beside `real` held-out examples (the good generator); `blur` is
    the Gaussian's standard deviation in pixels."""
    from scipy.ndimage import gaussian_filter

    return {
        "noise": rng.random(real.shape, dtype=np.float32),
        "repeated": np.repeat(real[:1], len(real), axis=0),
        "blurred": gaussian_filter(real, sigma=(0, blur, blur, 0)).astype(np.float32),
    }


@pytest.mark.slow  # make test's time budget: trains cnn-digits for 8 epochs (about 9 s of a worker)
def test_classifier_judge_ranks_real_pictures_above_noise_repeats_and_blur(store):
    """Fréchet distance, classifier score and conditional accuracy each put held-out real digits first."""
    from pipelines import gan_evaluation
    from pipelines.config import load_experiment
    from pipelines.data import load_dataset
    from pipelines.runner import train

    config = load_experiment("cnn-digits", ["train.epochs=8"])
    dataset = load_dataset(config.data)
    judge = gan_evaluation.classifier_judge(train(config).model, dataset)
    assert judge.failure is None and judge.metrics["evaluator_test_accuracy"] > 0.9
    real_train = dataset.arrays("train").x
    held_out = dataset.arrays("validation")
    good = gan_evaluation.generation_scores(judge, real_train, held_out.x, held_out.y)
    assert good["frechet_ratio"] < 3.0 and good["conditional_accuracy"] > 0.9
    for name, samples in _planted(held_out.x, np.random.default_rng(0), blur=1.0).items():
        bad = gan_evaluation.generation_scores(judge, real_train, samples, held_out.y)
        assert bad["frechet_distance"] > 2 * good["frechet_distance"], name
        assert bad["classifier_score"] < good["classifier_score"], name
        assert bad["conditional_accuracy"] < good["conditional_accuracy"], name


@pytest.mark.slow  # 30-45 s of a worker: make test keeps the labelled path and the classifier judge
def test_autoencoder_judge_ranks_real_pictures_above_noise_repeats_and_blur(store, tmp_path):
    from pipelines import gan_evaluation
    from pipelines.config import DataConfig
    from pipelines.data import load_dataset

    folder = draw_pictures(tmp_path / "pictures", {"": 300})
    dataset = load_dataset(DataConfig(source="images", path=str(folder), image_size=[SIZE, SIZE]))
    assert gan_evaluation.unlabelled(dataset)
    judge = gan_evaluation.autoencoder_judge(dataset, seed=0)
    assert judge.failure is None and judge.metrics["evaluator_skill"] >= 0.5
    real_train = dataset.arrays("train").x
    held_out = dataset.arrays("validation").x
    good = gan_evaluation.generation_scores(judge, real_train, held_out)
    for name, samples in _planted(held_out, np.random.default_rng(0), blur=1.0).items():
        bad = gan_evaluation.generation_scores(judge, real_train, samples)
        assert bad["frechet_distance"] > 2 * good["frechet_distance"], name


def test_a_judge_with_constant_features_is_refused():
    import keras

    from pipelines import gan_evaluation
    from pipelines.gan_scores import judge_failure

    assert judge_failure(1.0, np.ones((50, 8))) == "constant_features"
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Dense(8, kernel_initializer="zeros")(keras.layers.Flatten()(inputs))
    probabilities = keras.layers.Dense(2, activation="softmax", name="probabilities")(features)
    classifier = keras.Model(inputs, probabilities)

    class Digits:  # the two methods classifier_judge reads
        def arrays(self, split, limit=None):
            from pipelines.data import Split

            labels = np.arange(40) % 2
            return Split(np.random.default_rng(0).random((40, 4, 4, 1), dtype=np.float32), labels)

    judge = gan_evaluation.classifier_judge(classifier, Digits())
    assert judge.failure == "constant_features" and "same features" in judge.reason
    with pytest.raises(ValueError, match="cannot score"):
        gan_evaluation.generation_scores(judge, np.zeros((4, 4, 4, 1)), np.zeros((4, 4, 4, 1)))


def test_the_floor_needs_half_the_errors_of_the_best_guess_and_more_than_luck():
    from pipelines.gan_scores import judge_failure

    spread = np.random.default_rng(0).normal(size=(50, 4))
    assert judge_failure(0.4, spread, correct=70, total=100, chance=0.5) == "evaluator_below_floor"
    assert judge_failure(0.8, spread, correct=5, total=5, chance=0.5) == "evaluator_near_chance"
    assert judge_failure(0.8, spread, correct=90, total=100, chance=0.5) is None
    assert judge_failure(0.6, spread) is None and judge_failure(0.4, spread) == "evaluator_below_floor"


@pytest.mark.slow
def test_a_labelled_folder_with_a_good_evaluator_reports_conditional_accuracy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    data = draw_pictures(folder / "pictures", {"red": 40, "green": 40, "blue": 40})
    evaluator = folder / "quick-evaluator.yaml"
    evaluator.write_text(QUICK_EVALUATOR)
    result = _run_folder(folder, data, "train.epochs=2", f"evaluate.evaluator={evaluator}")
    assert result.status == 0, result.error
    (evaluate,) = result.runs("evaluate")
    assert "scores_withheld" not in evaluate.data.tags, result.output
    metrics = evaluate.data.metrics
    assert metrics["evaluator_skill"] >= 0.5
    accuracy, ratio = metrics["conditional_accuracy"], metrics["frechet_ratio"]
    assert f"conditional accuracy {accuracy:.4f}, Fréchet ratio {ratio:.2f}" in result.output


# A library's line on stdout: TensorFlow's C++ logging (`E0000 ... remapper failed`), Python
# logging's (`WARNING:absl:`) and MLflow's (`2026/01/02 03:04:05 INFO mlflow...`).
LIBRARY_LINE = re.compile(r"^([EWIF]\d{4} |[A-Z]+:\w+:|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Z]+ )")


# A fresh process that imports TensorFlow, trains an evaluator and a GAN: about 35 s of a worker.
@pytest.mark.slow
def test_a_gan_images_run_prints_nothing_from_libraries(tmp_path):
    data = draw_pictures(tmp_path / "pictures", {"red": 20, "green": 20})
    evaluator = tmp_path / "quick-evaluator.yaml"
    evaluator.write_text(QUICK_EVALUATOR.replace("epochs: 12", "epochs: 2"))
    # TensorFlow's logging as the CLI sets it, not as the test session has it.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "-e", "gan-images", f"data.path={data}", *QUICK]
        + ["train.epochs=2", "train.sample_every=1", f"evaluate.evaluator={evaluator}"]
        + ["--out", str(tmp_path / "generator")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [line for line in result.stdout.splitlines() if LIBRARY_LINE.match(line)] == []
