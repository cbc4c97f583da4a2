"""Evaluate: score the trained model on the test split; log metrics, confusion matrix, table (and
what suits the data: confident texts, spectrograms of clips, a forecast)."""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable, Iterator

import keras
import mlflow
import numpy as np

from pipelines import gan_evaluation, plots, tracking
from pipelines.callbacks import generated_grid
from pipelines.config import ExperimentConfig
from pipelines.data import PreparedDataset, as_tf_dataset
from pipelines.serving import is_generator, servable
from pipelines.stages.results import EvaluateResult, TrainResult

FORECAST_PLOT_WINDOWS = 200
EVALUATE_BATCH_SIZE = 256
EVALUATE_BATCH_BYTES = 16 << 20  # the forecast plot shows the first test windows
EXAMPLES_SHOWN = 10  # text: the most confident right and wrong test sentences, each
SPECTROGRAMS_SHOWN = 8  # audio: the first test clips' spectrograms, with true and predicted class


def evaluate_stage(
    config: ExperimentConfig,
    trained: TrainResult,
    dataset: PreparedDataset,
    evaluator: TrainResult | None = None,
) -> EvaluateResult:
    """Test-split metrics of the trained model, linked to its logged model in MLflow.

    The test split streams batch by batch: metrics, confusion matrix and per-class figures are
    accumulated, never computed on the split held whole. A generator is scored instead with the
    `evaluator` classifier (a model trained by this pipeline on the real data; None for unlabelled
    data, judged by an autoencoder trained here): Fréchet distance, classifier score, conditional
    accuracy, all withheld when the judge cannot judge (`pipelines.gan_evaluation`).
    """
    model = servable(trained.model)
    generative = is_generator(model)
    if generative and evaluator is None and not gan_evaluation.unlabelled(dataset):
        raise ValueError("evaluating a generator of labelled data needs an evaluator classifier")
    tags = {
        "train_run_id": trained.run_id,
        "model_uri": trained.model_uri,
        "dataset_digest": dataset.digest,
    }
    if generative and evaluator is not None:
        tags["evaluator_run_id"] = evaluator.run_id
    with tracking.stage_run(config, "evaluate", tags) as run:
        tracking.log_params({"train_run_id": trained.run_id, "model_uri": trained.model_uri})
        if generative:
            metrics = _generation_report(config, model, evaluator, dataset)
        else:
            batches = _test_batches(model, dataset, config)
            if dataset.spec.task == "classification":
                metrics = _classification_report(batches, dataset, model)
            else:
                metrics = _regression_report(batches, dataset)
        model_id = (
            trained.model_uri.removeprefix("models:/") if trained.model_uri.startswith("models:/") else None
        )
        mlflow.log_metrics(metrics, model_id=model_id)
    return EvaluateResult(run_id=run.info.run_id, metrics=metrics)


def _test_batches(
    model: keras.Model, dataset: PreparedDataset, config: ExperimentConfig
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(inputs, targets, predictions) of each test batch, streamed from the prepared shards."""
    # Inference batches of up to EVALUATE_BATCH_SIZE examples (fewer Python round trips than
    # training's batches, same outputs), but of about EVALUATE_BATCH_BYTES at most as model inputs.
    input_bytes = 4 * int(np.prod(dataset.spec.input_shape))
    batch_size = max(1, min(EVALUATE_BATCH_SIZE, EVALUATE_BATCH_BYTES // max(1, input_bytes)))
    import tensorflow as tf

    # One compiled call per batch; `predict_on_batch` would hand a tf.distribute strategy's
    # replicas each the whole batch and return every replica's outputs. A partial, not a lambda:
    # TensorFlow counts the traces of every function of the same code together, and the lambda's
    # new model at each evaluate of one process (tuning trials, sweeps, the Python API) printed
    # its "triggered tf.function retracing" warning.
    infer = tf.function(functools.partial(model, training=False), reduce_retracing=True)
    for x, y in as_tf_dataset(dataset.splits["test"], batch_size, cache="none"):
        # A table's inputs are a dict of columns.
        yield tf.nest.map_structure(lambda tensor: tensor.numpy(), x), y.numpy(), np.asarray(infer(x))


def _generation_report(
    config: ExperimentConfig, generator: keras.Model, evaluator: TrainResult | None, dataset: PreparedDataset
) -> dict[str, float]:
    """Score generated samples with a judge trained on the same data (the evaluator classifier, or
    an autoencoder for unlabelled data), only when that judge can judge (`pipelines.gan_evaluation`);
    log its own test figures either way, the final sample grid and a latent interpolation."""
    if evaluator is not None:
        judge = gan_evaluation.classifier_judge(evaluator.model, dataset)
    else:
        judge = gan_evaluation.autoencoder_judge(dataset, config.seed)
    mlflow.set_tag("gan_judge", judge.kind)
    metrics = dict(judge.metrics)
    num_classes = dataset.spec.num_classes or 1
    if judge.failure is not None:
        mlflow.set_tag("scores_withheld", judge.failure)
        print(f"note: GAN scores withheld: {judge.reason}; no Fréchet distance or accuracy is reported")
    else:
        generated, labels = gan_evaluation.generated_for_scores(
            generator, config.evaluate.generated_samples, config.seed + 1, num_classes
        )
        real_train = dataset.arrays("train", max(len(judge.test_features), len(generated))).x
        metrics.update(gan_evaluation.generation_scores(judge, real_train, generated, labels))
    count = num_classes * 8 if num_classes > 1 and len(generator.inputs) > 1 else 40
    grid = generated_grid(generator, dataset.class_names, config.seed, count, "final samples")
    tracking.log_figure(grid, "generated/final.png")
    interpolation = gan_evaluation.interpolation_grid(
        generator, dataset.class_names, config.seed, "latent interpolation"
    )
    tracking.log_figure(interpolation, "generated/interpolation.png")
    return metrics


def _classification_report(
    batches: Iterable, dataset: PreparedDataset, model: keras.Model
) -> dict[str, float]:
    """Loss, accuracy, macro-F1, the confusion matrix and a per-class table, batch by batch; for
    text also the most confident right and wrong test texts (`examples.json`); for audio the
    first test clips' spectrograms with their true and predicted classes (`spectrograms.png`)."""
    classes = dataset.spec.num_classes
    names = [dataset.class_name(c) for c in range(classes)]
    matrix = np.zeros((classes, classes), dtype=np.int64)
    loss_sum, count = 0.0, 0
    shown = ConfidentExamples(names, EXAMPLES_SHOWN) if dataset.spec.input_dtype == "string" else None
    heard: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for inputs, labels, probabilities in batches:
        labels = labels.astype(np.int64)
        predictions = probabilities.argmax(axis=-1)
        if shown is not None:
            shown.add(inputs, labels, probabilities)
        if dataset.spec.is_audio and heard is None:
            heard = inputs[:SPECTROGRAMS_SHOWN], labels[:SPECTROGRAMS_SHOWN], predictions[:SPECTROGRAMS_SHOWN]
        matrix += np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(
            classes, classes
        )
        loss_sum += float(np.sum(keras.losses.sparse_categorical_crossentropy(labels, probabilities)))
        count += len(labels)
    true_positives = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(true_positives, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros(classes), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(classes), where=total > 0)
    mlflow.log_table(
        {
            "class": names,
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "f1": f1.tolist(),
            "support": support.tolist(),
        },
        "per_class.json",
    )
    tracking.log_figure(plots.confusion_matrix(matrix, names), "confusion_matrix.png")
    mlflow.log_dict({"classes": names, "matrix": matrix.tolist()}, "confusion_matrix.json")
    if shown is not None:
        mlflow.log_dict(shown.as_dict(), "examples.json")
    if heard is not None:
        _log_spectrograms(model, dataset, *heard)
    return {
        "test_loss": loss_sum / max(1, count),
        "test_accuracy": float(true_positives.sum() / max(1, count)),
        "test_macro_f1": float(f1.mean()),
    }


def _log_spectrograms(
    model: keras.Model,
    dataset: PreparedDataset,
    waveforms: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
) -> None:
    """The log-mel spectrograms the model computes of some test clips, titled with the true and
    the predicted class (`spectrograms.png`)."""
    from models.audio import log_mel_spectrograms

    titles = [
        f"{dataset.class_name(int(label))} → {dataset.class_name(int(predicted))}"
        for label, predicted in zip(labels, predictions, strict=True)
    ]
    figure = plots.spectrograms(
        log_mel_spectrograms(model, waveforms),
        titles,
        seconds=waveforms.shape[1] / dataset.spec.sample_rate,
        title=f"{dataset.name}: test clips, true → predicted",
    )
    tracking.log_figure(figure, "spectrograms.png")


class ConfidentExamples:
    """The `count` test examples predicted right with the highest confidence, and the `count`
    predicted wrong with the highest confidence, kept batch by batch (two bounded heaps)."""

    def __init__(self, class_names: list[str], count: int) -> None:
        self.class_names = class_names
        self.count = count
        self._kept: dict[bool, list[tuple[float, int, dict]]] = {True: [], False: []}
        self._seen = 0

    def add(self, texts: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> None:
        """One batch: raw texts (str or UTF-8 bytes), true class indices, predicted probabilities."""
        predictions = probabilities.argmax(axis=-1)
        confidences = probabilities.max(axis=-1)
        for text, label, predicted, confidence in zip(texts, labels, predictions, confidences, strict=True):
            right = bool(label == predicted)
            heap = self._kept[right]
            entry = (
                float(confidence),
                -self._seen,
                {"text": text, "label": int(label), "predicted": int(predicted)},
            )
            self._seen += 1
            if len(heap) < self.count:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)

    def as_dict(self) -> dict[str, list[dict]]:
        """`right` and `wrong`, each most confident first: text, true and predicted class, confidence."""
        return {
            "right" if right else "wrong": [
                self._shown(confidence, example)
                for confidence, _, example in sorted(heap, key=lambda e: e[:2], reverse=True)
            ]
            for right, heap in self._kept.items()
        }

    def _shown(self, confidence: float, example: dict) -> dict:
        text = example["text"]
        return {
            "text": text.decode("utf-8") if isinstance(text, bytes) else str(text),
            "label": self.class_names[example["label"]],
            "predicted": self.class_names[example["predicted"]],
            "confidence": round(confidence, 4),
        }


def _regression_report(batches: Iterable, dataset: PreparedDataset) -> dict[str, float]:
    """MSE, MAE, RMSE, and the MSE of always predicting the train targets' mean: the bar to beat.

    A forecast adds the naive forecast's MAE and RMSE (the last past value, repeated: a model
    that does not beat it has learnt nothing the series' last value does not already say) and a
    plot of the first test windows.
    """
    train_means = np.asarray(dataset.train_target_means or [dataset.spec.target_mean], dtype=np.float64)
    sums = {"squared": 0.0, "absolute": 0.0, "baseline": 0.0, "naive_squared": 0.0, "naive_absolute": 0.0}
    count = 0
    shown: dict[str, list[np.ndarray]] = {"past": [], "targets": [], "predictions": [], "naive": []}
    for past, targets, predictions in batches:
        targets = targets.reshape(len(targets), -1).astype(np.float64)
        errors = predictions.reshape(targets.shape) - targets
        sums["squared"] += float(np.sum(errors**2))
        sums["absolute"] += float(np.sum(np.abs(errors)))
        sums["baseline"] += float(np.sum((targets - train_means) ** 2))
        count += targets.size
        if dataset.forecast:
            naive = np.repeat(past[:, -1].reshape(len(past), 1), targets.shape[1], axis=1)
            sums["naive_squared"] += float(np.sum((naive - targets) ** 2))
            sums["naive_absolute"] += float(np.sum(np.abs(naive - targets)))
            if sum(map(len, shown["past"])) < FORECAST_PLOT_WINDOWS:
                values = (past[..., 0], targets, predictions.reshape(targets.shape), naive)
                for key, value in zip(shown, values, strict=True):
                    shown[key].append(value)
    mse = sums["squared"] / max(1, count)
    metrics = {
        "test_loss": mse,
        "test_mse": mse,
        "test_mae": sums["absolute"] / max(1, count),
        "test_rmse": float(np.sqrt(mse)),
        "test_baseline_mse": sums["baseline"] / max(1, count),
    }
    if dataset.forecast:
        metrics["test_naive_mae"] = sums["naive_absolute"] / max(1, count)
        metrics["test_naive_rmse"] = float(np.sqrt(sums["naive_squared"] / max(1, count)))
        tracking.log_figure(
            plots.forecast(*(np.concatenate(parts) for parts in shown.values())), "forecast.png"
        )
    return metrics
