"""Prepare: load the dataset, describe it (sizes, class counts, digest, samples) in MLflow."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np

from pipelines import plots, tracking
from pipelines.config import ExperimentConfig
from pipelines.data import LoadedDataset, load_dataset
from pipelines.stages.results import PrepareResult

SAMPLE_COUNT = 32


def prepare_stage(config: ExperimentConfig, dataset: LoadedDataset | None = None) -> PrepareResult:
    """Load (or take) the configured dataset and log it as this run's inputs."""
    dataset = dataset or load_dataset(config.data)
    tags = {"dataset_digest": dataset.digest, "data_hash": config.section_hash("data")}
    with tracking.stage_run(config, "prepare", tags) as run:
        tracking.log_params(
            {
                "dataset.name": dataset.name,
                "dataset.version": dataset.version,
                "dataset.source": dataset.source,
                "dataset.digest": dataset.digest,
                "dataset.splits": ",".join(dataset.splits),
                "dataset.input_shape": list(dataset.spec.input_shape),
                "dataset.task": "forecast" if dataset.forecast else dataset.spec.task,
                "dataset.num_classes": dataset.spec.num_classes,
                **{f"dataset.size.{name}": size for name, size in dataset.sizes().items()},
                **({"dataset.location": dataset.location} if dataset.location else {}),
                **({"dataset.features": dataset.features} if dataset.features else {}),
            }
        )
        log_dataset_inputs(dataset)
        if dataset.spec.task == "classification":
            counts = {split: dataset.class_counts(split) for split in dataset.splits}
            mlflow.log_metrics(
                {f"class_count.{split}.{label}": n for split, c in counts.items() for label, n in c.items()}
            )
            mlflow.log_dict(counts, "class_counts.json")
        train = dataset.splits["train"]
        shown = min(SAMPLE_COUNT, len(train))
        titles = [
            dataset.class_name(int(label))
            if dataset.spec.task == "classification"
            else f"{float(np.ravel(label)[0]):.2f}"
            for label in train.y[:shown]
        ]
        if dataset.spec.input_dtype == "string":
            # Text reads better as a table than as a picture.
            mlflow.log_table({"text": train.x[:shown].tolist(), "label": titles}, "samples.json")
        else:
            mlflow.log_figure(
                plots.sample_grid(train.x[:shown], titles, title=f"{dataset.name}: training examples"),
                "samples.png",
            )
    return PrepareResult(run_id=run.info.run_id, dataset=dataset)


def log_dataset_inputs(dataset: LoadedDataset) -> None:
    """Log each split as an MLflow dataset input (MLflow computes the digest).

    A user's file or folder is the dataset's source; TFDS datasets keep MLflow's default.
    """
    for name, split in dataset.splits.items():
        with warnings.catch_warnings():
            # A local path matches MLflow's local-artifact source twice over; it says so, harmlessly.
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            logged = mlflow.data.from_numpy(
                split.x, targets=split.y, name=f"{dataset.name}-{name}", source=dataset.location
            )
        mlflow.log_input(logged, context=name)
