"""Prepare: materialise the dataset in the prepared format (or find it there) and describe it in
MLflow: sizes, class counts, digest, schema, where the shards are, sample examples."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.types import ColSpec, DataType, Schema, TensorSpec

from pipelines import plots, tracking
from pipelines.config import ExperimentConfig
from pipelines.data import PreparedDataset, load_dataset
from pipelines.stages.results import PrepareResult

SAMPLE_COUNT = 32


def prepare_stage(config: ExperimentConfig, dataset: PreparedDataset | None = None) -> PrepareResult:
    """Prepare (or take) the configured dataset and log it as this run's inputs."""
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
                "dataset.prepared_path": str(dataset.folder),
                **{f"dataset.size.{name}": size for name, size in dataset.sizes().items()},
                **({"dataset.location": dataset.location} if dataset.location else {}),
                **({"dataset.features": dataset.features} if dataset.features else {}),
                **{f"dataset.{key}": value for key, value in dataset.reading.items()},
            }
        )
        mlflow.log_metrics(
            {
                "dataset_megabytes": dataset.nbytes / 1e6,
                **({"materialise_seconds": dataset.seconds} if not dataset.reused else {}),
            }
        )
        mlflow.set_tag("dataset_materialised", "reused" if dataset.reused else "now")
        if dataset.skipped:
            mlflow.set_tag("skipped_files", len(dataset.skipped))
            mlflow.log_dict({"skipped": dataset.skipped}, "skipped_files.json")
        log_dataset_inputs(dataset)
        if dataset.spec.task == "classification":
            counts = {split: dataset.class_counts(split) for split in dataset.splits}
            # Class names may be any text (`<=50K`); metric names may not: the JSON keeps them exact.
            named = tracking.safe_names(dataset.class_names)
            mlflow.log_metrics(
                {
                    f"class_count.{split}.{named.get(label, label)}": n
                    for split, c in counts.items()
                    for label, n in c.items()
                }
            )
            mlflow.log_dict(counts, "class_counts.json")
        for note in [*dataset.notes, *unread_columns(dataset)]:
            print(f"note: {dataset.name}: {note}")
        if dataset.spec.is_table:
            mlflow.log_dict({"columns": dataset.table_schema, "notes": dataset.notes}, "schema.json")
            _log_table_samples(dataset, config.data.target or "target")
        else:
            _log_samples(dataset)
    return PrepareResult(run_id=run.info.run_id, dataset=dataset)


def _log_samples(dataset: PreparedDataset) -> None:
    """The first training examples with their labels: texts as a table, the rest as a picture grid."""
    train = dataset.arrays("train", SAMPLE_COUNT)
    titles = [
        dataset.class_name(int(label))
        if dataset.spec.task == "classification"
        else f"{float(np.ravel(label)[0]):.2f}"
        for label in train.y
    ]
    if dataset.spec.input_dtype == "string":
        # Text reads better as a table than as a picture.
        mlflow.log_table({"text": train.x.tolist(), "label": titles}, "samples.json")
    else:
        tracking.log_figure(
            plots.sample_grid(train.x, titles, title=f"{dataset.name}: training examples"), "samples.png"
        )


def unread_columns(dataset: PreparedDataset) -> list[str]:
    """One sentence per column of a table that the model does not read, with why and how to read it."""
    lines = []
    for entry in dataset.table_schema:
        if entry["kind"] in ("numeric", "categorical"):
            continue
        name = entry["column"]
        if entry["kind"] == "text":
            how = f"an MLP reads numbers and categories (data.columns.{name}=categorical reads its values)"
        else:
            how = f"data.columns.{name}=numeric or categorical reads it"
        lines.append(f"column {name!r} is not read: {entry['why']}; {how}")
    return lines


def _log_table_samples(dataset: PreparedDataset, target: str) -> None:
    """The first training rows as the file holds them, with their `target` (`samples.json`)."""
    from pipelines.serving import raw_rows

    train = dataset.arrays("train", SAMPLE_COUNT)
    rows = raw_rows(dataset.spec, train.x)
    rows[target] = (
        [dataset.class_name(int(value)) for value in train.y]
        if dataset.spec.task == "classification"
        else np.ravel(train.y).tolist()
    )
    mlflow.log_table(rows.astype(object).where(rows.notna(), None), "samples.json")


class PreparedSplitDataset(MetaDataset):
    """An MLflow dataset entity for one prepared split: digest, schema and size, no data copied."""

    def __init__(self, source, name: str, digest: str, schema: Schema, examples: int) -> None:
        self._examples = examples
        super().__init__(source, name=name, digest=digest, schema=schema)

    @property
    def profile(self) -> dict:
        return {"num_examples": self._examples}


def log_dataset_inputs(dataset: PreparedDataset) -> None:
    """Log each split as an MLflow dataset input, with the prepared dataset's digest.

    Its source is the user's file or folder when there is one, else the folder of the shards.
    """
    for name, split in dataset.splits.items():
        input_type = np.dtype(object) if split.stored_dtype == "string" else np.dtype(np.float32)
        target_type = DataType.long if split.target_dtype == "int32" else DataType.float
        if dataset.spec.is_table:
            schema = Schema(
                [
                    ColSpec(DataType.float if column.kind == "numeric" else DataType.string, column.name)
                    for column in dataset.spec.columns
                ]
            )
        else:
            schema = Schema(
                [
                    TensorSpec(input_type, (-1, *split.element_shape), "x"),
                    TensorSpec(np.dtype(target_type.to_numpy()), (-1, *split.target_shape), "y"),
                ]
            )
        with warnings.catch_warnings():
            # A local path matches MLflow's local-artifact source twice over; it says so, harmlessly.
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            source = resolve_dataset_source(dataset.location or str(dataset.folder))
        logged = PreparedSplitDataset(
            source,
            name=f"{dataset.name}-{name}",
            digest=dataset.digest,
            schema=schema,
            examples=split.size,
        )
        mlflow.log_input(logged, context=name)
