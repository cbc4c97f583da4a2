"""Evaluate: score the trained model on the test split; log metrics, confusion matrix, table."""

from __future__ import annotations

import keras
import mlflow
import numpy as np

from pipelines import plots, tracking
from pipelines.config import ExperimentConfig
from pipelines.data import LoadedDataset, as_tf_dataset
from pipelines.stages.results import EvaluateResult, TrainResult


def evaluate_stage(config: ExperimentConfig, trained: TrainResult, dataset: LoadedDataset) -> EvaluateResult:
    """Test-split metrics of the trained model, linked to its logged model in MLflow."""
    test = dataset.splits["test"]
    probabilities = trained.model.predict(as_tf_dataset(test, config.train.batch_size), verbose=0)
    tags = {
        "train_run_id": trained.run_id,
        "model_uri": trained.model_uri,
        "dataset_digest": dataset.digest,
    }
    with tracking.stage_run(config, "evaluate", tags) as run:
        tracking.log_params({"train_run_id": trained.run_id, "model_uri": trained.model_uri})
        if dataset.spec.task == "classification":
            metrics = _classification_report(test.y, probabilities, dataset)
        else:
            metrics = _regression_report(test.y, probabilities)
        model_id = (
            trained.model_uri.removeprefix("models:/") if trained.model_uri.startswith("models:/") else None
        )
        mlflow.log_metrics(metrics, model_id=model_id)
    return EvaluateResult(run_id=run.info.run_id, metrics=metrics)


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


def _regression_report(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    errors = predictions.reshape(len(targets), -1) - targets.reshape(len(targets), -1)
    return {
        "test_loss": float(np.mean(errors**2)),
        "test_mse": float(np.mean(errors**2)),
        "test_mae": float(np.mean(np.abs(errors))),
        "test_rmse": float(np.sqrt(np.mean(errors**2))),
    }
