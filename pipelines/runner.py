"""Wires the stages: the whole pipeline under one parent run, or one stage from an earlier run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow

from pipelines import tracking
from pipelines.config import ConfigError, ExperimentConfig, load_experiment
from pipelines.data import LoadedDataset, load_dataset
from pipelines.stages.evaluate import evaluate_stage
from pipelines.stages.export import export_stage
from pipelines.stages.prepare import prepare_stage
from pipelines.stages.results import EvaluateResult, ExportResult, PrepareResult, TrainResult
from pipelines.stages.train import check_config_fits_data, train_stage


@dataclass
class PipelineResult:
    """Every stage's result plus the parent run."""

    run_id: str
    config: ExperimentConfig
    prepared: PrepareResult
    trained: TrainResult
    evaluated: EvaluateResult
    exported: ExportResult


def run_pipeline(config: ExperimentConfig, export_dir: Path | None = None) -> PipelineResult:
    """prepare -> train -> evaluate -> export, each a child run of one `pipeline` run."""
    tracking.configure(config)
    dataset = load_dataset(config.data)
    check_config_fits_data(config, dataset)  # before any run starts
    # A GAN's evaluator classifier is a pipeline run of its own, trained (or reused) first.
    evaluator = _evaluator(config, dataset) if config.architecture == "gan" else None
    with tracking.stage_run(config, "pipeline") as parent:
        prepared = prepare_stage(config, dataset)
        mlflow.set_tag("prepare_run_id", prepared.run_id)
        trained = train_stage(config, prepared)
        mlflow.set_tag("train_run_id", trained.run_id)
        evaluated = evaluate_stage(config, trained, dataset, evaluator)
        mlflow.set_tag("evaluate_run_id", evaluated.run_id)
        mlflow.log_metrics(evaluated.metrics)
        exported = export_stage(
            config, trained, dataset, export_destination(config, trained.run_id, export_dir)
        )
        mlflow.set_tags({"export_run_id": exported.run_id, "export_path": str(exported.path)})
    return PipelineResult(parent.info.run_id, config, prepared, trained, evaluated, exported)


def prepare(config: ExperimentConfig) -> PrepareResult:
    """The prepare stage alone."""
    tracking.configure(config)
    return prepare_stage(config)


def train(config: ExperimentConfig, dataset: LoadedDataset | None = None) -> TrainResult:
    """Train, reusing a finished prepare run of the same data when there is one."""
    tracking.configure(config)
    prepared = _reusable_prepare(config, dataset) or prepare_stage(config, dataset)
    return train_stage(config, prepared)


def evaluate(train_run_id: str) -> EvaluateResult:
    """Evaluate the model of an earlier train run on its dataset's test split."""
    config, trained, dataset = _from_train_run(train_run_id)
    evaluator = _evaluator(config, dataset) if config.architecture == "gan" else None
    return evaluate_stage(config, trained, dataset, evaluator)


def export(train_run_id: str, export_dir: Path | None = None) -> ExportResult:
    """Export the model of an earlier train run as a SavedModel."""
    config, trained, dataset = _from_train_run(train_run_id)
    return export_stage(config, trained, dataset, export_destination(config, train_run_id, export_dir))


def export_destination(config: ExperimentConfig, train_run_id: str, export_dir: Path | None) -> Path:
    """`<export.dir>/<experiment>-<train run id prefix>` unless a folder is given."""
    if export_dir is not None:
        return Path(export_dir)
    return Path(config.export.dir) / f"{config.name}-{train_run_id[:8]}"


def _from_train_run(train_run_id: str) -> tuple[ExperimentConfig, TrainResult, LoadedDataset]:
    tracking.configure()
    run = tracking.get_run(train_run_id)
    model_uri = tracking.train_run_model_uri(run)
    config = tracking.run_config(run)
    dataset = load_dataset(config.data)
    expected = run.data.tags.get("dataset_digest")
    if expected and expected != dataset.digest:
        raise ConfigError(
            f"dataset {config.data.name!r} now has digest {dataset.digest}, but train run "
            f"{train_run_id} was trained on {expected}; its test split is not the same data"
        )
    model = tracking.load_keras_model(model_uri)
    return config, TrainResult(run_id=train_run_id, model_uri=model_uri, model=model), dataset


def _evaluator(config: ExperimentConfig, dataset: LoadedDataset) -> TrainResult:
    """The classifier that scores a GAN: a finished train run of the evaluator experiment on the
    same data (same config and dataset digest), or a new one trained now."""
    name = config.evaluate.evaluator or f"cnn-{config.data.name}"
    evaluator_config = load_experiment(name).model_copy(
        update={"data": config.data, "tracking": config.tracking}
    )
    tracking.configure(evaluator_config)
    runs = mlflow.search_runs(
        experiment_ids=[tracking.experiment_id(evaluator_config)],
        filter_string=(
            f"tags.stage = 'train' and tags.config_hash = '{evaluator_config.section_hash()}' "
            f"and tags.dataset_digest = '{dataset.digest}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if runs:
        model_uri = tracking.train_run_model_uri(runs[0])
        return TrainResult(runs[0].info.run_id, model_uri, tracking.load_keras_model(model_uri))
    return train(evaluator_config, dataset)


def _reusable_prepare(config: ExperimentConfig, dataset: LoadedDataset | None = None) -> PrepareResult | None:
    """A finished prepare run with the same data config, loaded again to check its digest."""
    runs = mlflow.search_runs(
        experiment_ids=[tracking.experiment_id(config)],
        filter_string=(
            f"tags.stage = 'prepare' and tags.data_hash = '{config.section_hash('data')}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        return None
    dataset = dataset or load_dataset(config.data)
    if runs[0].data.tags.get("dataset_digest") != dataset.digest:
        return None
    return PrepareResult(run_id=runs[0].info.run_id, dataset=dataset, reused=True)
