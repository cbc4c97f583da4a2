"""Wires the stages: the whole pipeline under one parent run, or one stage from an earlier run."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import mlflow

from pipelines import cache, distribute, gan_evaluation, tracking
from pipelines.callbacks import CheckpointEvery
from pipelines.config import ConfigError, ExperimentConfig, load_experiment
from pipelines.data import PreparedDataset, load_dataset, open_dataset
from pipelines.progress import Progress
from pipelines.stages.evaluate import evaluate_stage
from pipelines.stages.export import export_stage
from pipelines.stages.prepare import prepare_stage
from pipelines.stages.results import EvaluateResult, ExportResult, PrepareResult, TrainResult
from pipelines.stages.train import check_config_fits_data, check_model_builds, train_stage

if TYPE_CHECKING:
    import keras
    from mlflow.entities import Run

Result = TypeVar("Result")


@dataclass
class PipelineResult:
    """Every stage's result plus the parent run."""

    run_id: str
    config: ExperimentConfig
    prepared: PrepareResult
    trained: TrainResult
    evaluated: EvaluateResult
    exported: ExportResult | None  # None when the pipeline stopped after evaluate

    @property
    def metrics(self) -> dict[str, float]:
        """The evaluation's test metrics."""
        return self.evaluated.metrics

    @property
    def model_uri(self) -> str:
        """The MLflow URI of the trained model."""
        return self.trained.model_uri

    @property
    def export_path(self) -> Path | None:
        """The exported SavedModel's folder (None when the pipeline stopped after evaluate)."""
        return self.exported.path if self.exported is not None else None


def run_pipeline(
    config: ExperimentConfig,
    export_dir: Path | None = None,
    force: Collection[str] = (),
    progress: Progress | None = None,
    train_callbacks: Sequence[keras.callbacks.Callback] = (),
    tags: dict[str, str] | None = None,
    export: bool = True,
    run_name: str | None = None,
) -> PipelineResult:
    """prepare -> train -> evaluate -> export, each a child run of one `pipeline` run.

    A stage whose fingerprint matches a finished run is reused (linked from the parent run by a
    `reused.<stage>` tag) unless `force` names it (or holds "all"). The parent run logs the
    config's params and the evaluation's metrics, so the runs table compares pipeline runs.
    Each stage is announced on `progress`, whose caller has started this experiment (a
    one-experiment progress by default). `train_callbacks` join the train stage's (a training
    they stop early is never reused), `tags` go on the pipeline run (named `run_name`, by default
    the experiment), and `export=False` stops after evaluate (a tuning trial).
    """
    if progress is None:
        progress = Progress()
        progress.start(config.name)
    forced = cache.forced_stages(force)
    config, export_dir = _for_this_worker(config, export_dir)
    if config.train.strategy == "multi_worker":
        # Every worker must run the same collective steps: none may skip a stage another runs.
        forced = set(cache.STAGES)
    tracking.configure(config)
    progress.stage("prepare")  # reading a source the first time is most of preparing it
    dataset = load_dataset(config.data)
    check_config_fits_data(config, dataset)  # before any run starts
    check_model_builds(config, dataset)
    # A GAN's evaluator classifier is a pipeline run of its own, trained (or reused) first.
    evaluator = None
    if config.architecture == "gan":
        progress.stage("evaluator classifier")
        evaluator = _evaluator(config, dataset)
    with tracking.stage_run(config, "pipeline", tags, run_name=run_name) as parent:
        tracking.log_params(config.flat_params())
        prepared = _cached_prepare(config, dataset, forced)
        _link(parent, "prepare", prepared)
        progress.stage("train")
        trained = _cached_train(config, prepared, forced, train_callbacks)
        _link(parent, "train", trained)
        progress.stage("evaluate")
        evaluated = _cached(
            config,
            "evaluate",
            trained.run_id,
            forced,
            lambda: evaluate_stage(config, trained, dataset, evaluator),
            lambda run: EvaluateResult(run.info.run_id, dict(run.data.metrics), reused=True),
        )
        _link(parent, "evaluate", evaluated)
        mlflow.log_metrics(evaluated.metrics)
        if not export:
            return PipelineResult(parent.info.run_id, config, prepared, trained, evaluated, None)
        progress.stage("export")
        destination = export_destination(config, trained.run_id, export_dir)
        exported = _cached(
            config,
            "export",
            f"{trained.run_id}:{destination.resolve()}",
            forced,
            lambda: export_stage(config, trained, dataset, destination),
            lambda run: _reused_export(run, destination),
        )
        _link(parent, "export", exported)
        mlflow.set_tag("export_path", str(exported.path))
    return PipelineResult(parent.info.run_id, config, prepared, trained, evaluated, exported)


def prepare(config: ExperimentConfig) -> PrepareResult:
    """The prepare stage alone (always recomputed: asking for it is asking to look again)."""
    tracking.configure(config)
    dataset = load_dataset(config.data)
    result = prepare_stage(config, dataset)
    cache.mark(result.run_id, cache.fingerprint(config, "prepare", dataset.digest))
    return result


def prepare_once(config: ExperimentConfig) -> PrepareResult:
    """The finished prepare run of the config's data, or a new one; processes on one machine take
    turns, so that workers starting together prepare a dataset once."""
    tracking.configure(config)
    dataset = load_dataset(config.data)
    with tracking.store_lock():
        return _cached_prepare(config, dataset, forced=set())


def train(config: ExperimentConfig, dataset: PreparedDataset | None = None) -> TrainResult:
    """Train, reusing a finished prepare run of the same data when there is one."""
    config, _ = _for_this_worker(config, None)
    tracking.configure(config)
    dataset = dataset or load_dataset(config.data)
    check_config_fits_data(config, dataset)  # before the prepare run
    check_model_builds(config, dataset)
    prepared = _cached_prepare(config, dataset, forced=set())
    result = train_stage(config, prepared)
    cache.mark(result.run_id, cache.fingerprint(config, "train", prepared.run_id))
    return result


def resume_train(train_run_id: str) -> TrainResult:
    """Continue a killed or failed train run from its last checkpointed epoch, in the same run."""
    tracking.configure()
    run = tracking.get_run(train_run_id)
    if run.data.tags.get("stage") != "train":
        raise ConfigError(f"run {train_run_id!r} is not a train run; --resume takes the id of a train run")
    if run.info.status == "FINISHED":
        raise ConfigError(f"train run {train_run_id!r} is FINISHED; there is nothing to resume")
    checkpoints = tracking.checkpoint_dir(train_run_id)
    if not CheckpointEvery.holds_checkpoint(checkpoints):
        raise ConfigError(
            f"train run {train_run_id!r} left no checkpoint in {checkpoints}; start a new training instead"
        )
    config = tracking.run_config(run)
    dataset = _run_dataset(run, config)
    prepared = PrepareResult(run.data.tags.get("prepare_run_id", ""), dataset, reused=True)
    result = train_stage(config, prepared, resume_run_id=train_run_id)
    cache.mark(result.run_id, cache.fingerprint(config, "train", prepared.run_id))
    return result


def evaluate(train_run_id: str) -> EvaluateResult:
    """Evaluate the model of an earlier train run on its dataset's test split."""
    config, trained, dataset = _from_train_run(train_run_id)
    evaluator = _evaluator(config, dataset) if config.architecture == "gan" else None
    return evaluate_stage(config, trained, dataset, evaluator)


def export(train_run_id: str, export_dir: Path | None = None, register: str | None = None) -> ExportResult:
    """Export the model of an earlier train run as a SavedModel (and register it when named)."""
    config, trained, dataset = _from_train_run(train_run_id)
    if register:
        config = config.model_copy(
            update={"export": config.export.model_copy(update={"registered_model": register})}
        )
    return export_stage(config, trained, dataset, export_destination(config, train_run_id, export_dir))


def export_destination(config: ExperimentConfig, train_run_id: str, export_dir: Path | None) -> Path:
    """`<export.dir>/<experiment>-<train run id prefix>` unless a folder is given."""
    if export_dir is not None:
        return Path(export_dir)
    return Path(config.export.dir) / f"{config.name}-{train_run_id[:8]}"


def _from_train_run(train_run_id: str) -> tuple[ExperimentConfig, TrainResult, PreparedDataset]:
    tracking.configure()
    run = tracking.get_run(train_run_id)
    model_uri = tracking.train_run_model_uri(run)
    config = tracking.run_config(run)
    dataset = _run_dataset(run, config)
    expected = run.data.tags.get("dataset_digest")
    if expected and expected != dataset.digest:
        raise ConfigError(
            f"dataset {config.data.name!r} now has digest {dataset.digest}, but train run "
            f"{train_run_id} was trained on {expected}; its test split is not the same data"
        )
    model = tracking.load_keras_model(model_uri)
    return config, TrainResult(run_id=train_run_id, model_uri=model_uri, model=model), dataset


def _run_dataset(run: Run, config: ExperimentConfig) -> PreparedDataset:
    """The prepared dataset a stage run read (by its digest tag), or its config's dataset prepared
    again when those shards are gone."""
    digest = run.data.tags.get("dataset_digest")
    return (open_dataset(digest) if digest else None) or load_dataset(config.data)


def _evaluator(config: ExperimentConfig, dataset: PreparedDataset) -> TrainResult | None:
    """The classifier that scores a GAN: a finished train run of the evaluator experiment on the
    same data (same config and dataset digest), or a new one trained now; None for unlabelled
    data (the evaluate stage judges it with an autoencoder)."""
    if gan_evaluation.unlabelled(dataset):
        return None
    default = "cnn-images" if config.data.source == "images" else f"cnn-{config.data.name}"
    name = config.evaluate.evaluator or default
    # The GAN's data section replaces the evaluator's before validation: an experiment made for
    # a user's folder (cnn-images) names no folder of its own.
    data = json.dumps(config.data.model_dump(mode="json"))
    evaluator_config = load_experiment(name, [f"data={data}"]).model_copy(
        update={"data": config.data, "tracking": config.tracking}
    )
    tracking.configure(evaluator_config)
    cached = tracking.newest_run(
        tracking.experiment_id(evaluator_config),
        {"stage": "train", "config_hash": evaluator_config.section_hash(), "dataset_digest": dataset.digest},
    )
    if cached is not None:
        model_uri = tracking.train_run_model_uri(cached)
        return TrainResult(cached.info.run_id, model_uri, tracking.load_keras_model(model_uri))
    return train(evaluator_config, dataset)


def _for_this_worker(
    config: ExperimentConfig, export_dir: Path | None
) -> tuple[ExperimentConfig, Path | None]:
    """Create the strategy before TensorFlow runs any op; send a non-chief worker's MLflow logs
    and exports to a scratch folder, so that only the chief writes where the user looks."""
    distribute.strategy(config.train.strategy)
    if distribute.is_chief():
        return config, export_dir
    scratch = Path(tempfile.mkdtemp(prefix="deeparch-worker-"))
    tracking_section = config.tracking.model_copy(update={"uri": tracking.local_store_uri(scratch)})
    export_section = config.export.model_copy(
        update={"dir": str(scratch / "exports"), "registered_model": None}
    )
    return config.model_copy(update={"tracking": tracking_section, "export": export_section}), None


def _cached(
    config: ExperimentConfig,
    stage: str,
    upstream: str,
    forced: set[str],
    compute: Callable[[], Result],
    reuse: Callable[[Run], Result | None],
    reusable: Callable[[Result], bool] = lambda result: True,
) -> Result:
    """Reuse the finished run of `stage` with the same fingerprint, or compute a new one and mark
    it for reuse when `reusable` says it is what the config asks for."""
    stage_fingerprint = cache.fingerprint(config, stage, upstream)
    if stage not in forced:
        run = cache.finished_run(config, stage, stage_fingerprint)
        reused = reuse(run) if run is not None else None
        if reused is not None:
            return reused
    result = compute()
    if reusable(result):
        cache.mark(result.run_id, stage_fingerprint)
    return result


def _cached_prepare(config: ExperimentConfig, dataset: PreparedDataset, forced: set[str]) -> PrepareResult:
    return _cached(
        config,
        "prepare",
        dataset.digest,
        forced,
        lambda: prepare_stage(config, dataset),
        lambda run: PrepareResult(run.info.run_id, dataset, reused=True),
    )


def _cached_train(
    config: ExperimentConfig,
    prepared: PrepareResult,
    forced: set[str],
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    def reuse(run: Run) -> TrainResult:
        model_uri = tracking.train_run_model_uri(run)
        return TrainResult(run.info.run_id, model_uri, tracking.load_keras_model(model_uri), reused=True)

    return _cached(
        config,
        "train",
        prepared.run_id,
        forced,
        lambda: train_stage(config, prepared, extra_callbacks=callbacks),
        reuse,
        # A training stopped early (a pruned trial) is not what its config asks for.
        reusable=lambda result: result.stopped_epoch is None,
    )


def _reused_export(run: Run, destination: Path) -> ExportResult | None:
    """An earlier export, only while its SavedModel is still where it was written."""
    path = Path(run.data.tags.get("export_path", ""))
    if path != destination.resolve() or not (path / "saved_model.pb").is_file():
        return None
    return ExportResult(run.info.run_id, path, run.data.metrics.get("parity_max_abs_diff", 0.0), reused=True)


def _link(parent: Run, stage: str, result) -> None:
    """Tag the parent pipeline run with the stage run it used, and say so when it was reused."""
    tags = {f"{stage}_run_id": result.run_id}
    if result.reused:
        tags[f"reused.{stage}"] = result.run_id
        print(f"reused {stage} from run {result.run_id}")
    mlflow.set_tags(tags)
