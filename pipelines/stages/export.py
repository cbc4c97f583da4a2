"""Export: write a TensorFlow SavedModel whole or not at all, after checking reload parity."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np

from pipelines import registry, tracking
from pipelines.config import ExperimentConfig
from pipelines.data import PreparedDataset
from pipelines.serving import example_inputs, model_inputs, servable
from pipelines.stages.results import ExportResult, TrainResult

PARITY_BATCH = 32


class ExportParityError(RuntimeError):
    """The reloaded SavedModel does not compute what the Keras model computes."""


def export_stage(
    config: ExperimentConfig, trained: TrainResult, dataset: PreparedDataset, destination: Path
) -> ExportResult:
    """Export to `destination` via a temporary folder, reload, compare, then move into place."""
    destination = destination.resolve()
    tags = {"train_run_id": trained.run_id, "model_uri": trained.model_uri}
    with tracking.stage_run(config, "export", tags) as run:
        tracking.log_params({"train_run_id": trained.run_id, "destination": str(destination)})
        destination.parent.mkdir(parents=True, exist_ok=True)
        # The staging folder sits beside the destination so the final move is one rename.
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
        try:
            saved_model = staging / "saved_model"
            model = servable(trained.model)
            model.export(str(saved_model), format="tf_saved_model", verbose=False)
            batch = example_inputs(model, dataset, PARITY_BATCH, seed=config.seed)
            parity, scale = saved_model_parity(model, saved_model, batch)
            mlflow.log_metric("parity_max_abs_diff", parity)
            # Outputs in a target's own units (prices) differ by float32 rounding of their size.
            allowed = config.export.parity_tolerance * max(1.0, scale)
            if parity > allowed:
                raise ExportParityError(
                    f"reloaded SavedModel differs from the Keras model by {parity:.3g} "
                    f"(export.parity_tolerance is {config.export.parity_tolerance:g} of outputs up to "
                    f"{scale:.3g}); nothing exported"
                )
            mlflow.log_artifacts(str(saved_model), "saved_model")
            _replace_folder(saved_model, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        mlflow.set_tag("export_path", str(destination))
        version = None
        if config.export.registered_model:
            version = registry.register(
                config.export.registered_model,
                trained.model_uri,
                {"train_run_id": trained.run_id, "dataset_digest": dataset.digest, "experiment": config.name},
            )
            mlflow.set_tags(
                {"registered_model": config.export.registered_model, "registered_version": version}
            )
    return ExportResult(run_id=run.info.run_id, path=destination, parity=parity, registered_version=version)


def saved_model_parity(
    model, saved_model: Path, batch: np.ndarray | dict[str, np.ndarray]
) -> tuple[float, float]:
    """Largest |Keras output - reloaded `serving_default` output| on `batch` (named inputs for
    many), and the largest |Keras output|."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    expected = np.asarray(model(model_inputs(model, batch), training=False))
    if not isinstance(batch, dict):
        (input_name,) = serve.structured_input_signature[1].keys()
        batch = {input_name: batch}
    (served,) = serve(**{name: tf.constant(value) for name, value in batch.items()}).values()
    return float(np.max(np.abs(served.numpy() - expected))), float(np.max(np.abs(expected)))


def _replace_folder(source: Path, destination: Path) -> None:
    """Move `source` to `destination`, replacing an earlier export without a half-written state."""
    if not destination.exists():
        source.rename(destination)
        return
    retired = destination.with_name(f".{destination.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    destination.rename(retired)
    source.rename(destination)
    shutil.rmtree(retired, ignore_errors=True)
