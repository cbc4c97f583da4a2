"""Evaluate: score the trained model on the test split; log metrics, confusion matrix, table."""

from __future__ import annotations

import keras
import mlflow
import numpy as np

from pipelines import gan_scores, plots, tracking
from pipelines.callbacks import log_generated_grid
from pipelines.config import ExperimentConfig
from pipelines.data import LoadedDataset, as_tf_dataset
from pipelines.serving import generator_inputs, is_generator, model_inputs, servable
from pipelines.stages.results import EvaluateResult, TrainResult

FEATURE_LAYER = "probabilities"  # the evaluator's head: its input is the feature vector


def evaluate_stage(
    config: ExperimentConfig,
    trained: TrainResult,
    dataset: LoadedDataset,
    evaluator: TrainResult | None = None,
) -> EvaluateResult:
    """Test-split metrics of the trained model, linked to its logged model in MLflow.

    A generator is scored instead with the `evaluator` classifier (a model trained by this
    pipeline on the real data): Fréchet distance, classifier score, conditional accuracy.
    """
    test = dataset.splits["test"]
    model = servable(trained.model)
    generative = is_generator(model)
    if generative and evaluator is None:
        raise ValueError("evaluating a generator needs an evaluator classifier")
    tags = {
        "train_run_id": trained.run_id,
        "model_uri": trained.model_uri,
        "dataset_digest": dataset.digest,
    }
    if generative:
        tags["evaluator_run_id"] = evaluator.run_id
    with tracking.stage_run(config, "evaluate", tags) as run:
        tracking.log_params({"train_run_id": trained.run_id, "model_uri": trained.model_uri})
        if generative:
            metrics = _generation_report(config, model, evaluator, dataset)
        else:
            predictions = model.predict(as_tf_dataset(test, config.train.batch_size), verbose=0)
            if dataset.spec.task == "classification":
                metrics = _classification_report(test.y, predictions, dataset)
            else:
                metrics = _regression_report(test.y, predictions, dataset.splits["train"].y)
                if dataset.forecast:
                    metrics.update(_forecast_report(test.x, test.y, predictions))
        model_id = (
            trained.model_uri.removeprefix("models:/") if trained.model_uri.startswith("models:/") else None
        )
        mlflow.log_metrics(metrics, model_id=model_id)
    return EvaluateResult(run_id=run.info.run_id, metrics=metrics)


def _generation_report(
    config: ExperimentConfig, generator: keras.Model, evaluator: TrainResult, dataset: LoadedDataset
) -> dict[str, float]:
    """Generate samples, score them against real data and log a final sample grid."""
    num_classes = dataset.spec.num_classes or 1
    inputs = generator_inputs(generator, config.evaluate.generated_samples, config.seed + 1, num_classes)
    generated = np.asarray(generator.predict(model_inputs(generator, inputs), verbose=0))
    metrics = generation_scores(
        evaluator.model, dataset.splits["train"].x, dataset.splits["test"].x, generated, inputs.get("labels")
    )
    count = num_classes * 8 if "labels" in inputs else 40
    log_generated_grid(
        generator, dataset.class_names, config.seed, count, "final samples", "generated/final.png"
    )
    return metrics


def generation_scores(
    classifier: keras.Model,
    real_train: np.ndarray,
    real_test: np.ndarray,
    generated: np.ndarray,
    generated_labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Generated samples scored by a classifier, beside the same scores of real data.

    `frechet_distance` (test vs generated features, the classifier's penultimate layer) sits
    beside `real_frechet_distance` (test vs train: the floor); `classifier_score` (the Inception
    score formula) beside `real_classifier_score` (the ceiling is the number of classes);
    `conditional_accuracy` when labels say what each sample was conditioned on.
    """
    features = keras.Model(classifier.inputs, [classifier.get_layer(FEATURE_LAYER).input, classifier.output])

    def embed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feature, probability = features.predict(x, batch_size=256, verbose=0)
        return np.asarray(feature), np.asarray(probability)

    test_features, test_probabilities = embed(real_test)
    train_features, _ = embed(real_train[: max(len(real_test), len(generated))])
    generated_features, generated_probabilities = embed(generated)
    metrics = {
        "frechet_distance": gan_scores.frechet_distance(test_features, generated_features),
        "real_frechet_distance": gan_scores.frechet_distance(test_features, train_features),
        "classifier_score": gan_scores.classifier_score(generated_probabilities),
        "real_classifier_score": gan_scores.classifier_score(test_probabilities),
    }
    metrics["frechet_ratio"] = metrics["frechet_distance"] / max(metrics["real_frechet_distance"], 1e-12)
    if generated_labels is not None:
        metrics["conditional_accuracy"] = gan_scores.conditional_accuracy(
            generated_probabilities, generated_labels
        )
    return metrics


def _classification_report(
    labels: np.ndarray, probabilities: np.ndarray, dataset: LoadedDataset
) -> dict[str, float]:
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    predictions = probabilities.argmax(axis=-1)
    classes = list(range(dataset.spec.num_classes))
    names = [dataset.class_name(c) for c in classes]
    loss = float(keras.losses.SparseCategoricalCrossentropy()(labels, probabilities))
    matrix = confusion_matrix(labels, predictions, labels=classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
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
    mlflow.log_figure(plots.confusion_matrix(matrix, names), "confusion_matrix.png")
    mlflow.log_dict({"classes": names, "matrix": matrix.tolist()}, "confusion_matrix.json")
    return {
        "test_loss": loss,
        "test_accuracy": float((predictions == labels).mean()),
        "test_macro_f1": float(
            f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)
        ),
    }


def _regression_report(
    targets: np.ndarray, predictions: np.ndarray, train_targets: np.ndarray
) -> dict[str, float]:
    """MSE, MAE, RMSE, and the MSE of always predicting the train targets' mean: the bar to beat."""
    targets = targets.reshape(len(targets), -1)
    errors = predictions.reshape(len(targets), -1) - targets
    train_mean = train_targets.reshape(len(train_targets), -1).mean(axis=0)
    return {
        "test_loss": float(np.mean(errors**2)),
        "test_mse": float(np.mean(errors**2)),
        "test_mae": float(np.mean(np.abs(errors))),
        "test_rmse": float(np.sqrt(np.mean(errors**2))),
        "test_baseline_mse": float(np.mean((targets - train_mean) ** 2)),
    }


def _forecast_report(past: np.ndarray, targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """MAE and RMSE of the naive forecast (the last past value, repeated), and the forecast plot.

    A model that does not beat the naive forecast has learnt nothing the series' last value does
    not already say.
    """
    targets = targets.reshape(len(targets), -1)
    naive = np.repeat(past[:, -1].reshape(len(past), 1), targets.shape[1], axis=1)
    errors = naive - targets
    mlflow.log_figure(
        plots.forecast(past[..., 0], targets, predictions.reshape(targets.shape), naive), "forecast.png"
    )
    return {
        "test_naive_mae": float(np.mean(np.abs(errors))),
        "test_naive_rmse": float(np.sqrt(np.mean(errors**2))),
    }
