"""Keras callbacks for side work during training: MLflow metric logging, throughput, probes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import keras
import mlflow
import numpy as np
from mlflow.entities import Metric

from pipelines import tracking


class EpochLine(keras.callbacks.Callback):
    """One line per epoch, for output that is not a terminal (a log file, a pipe, CI), where a
    progress bar's redraws are noise and Keras' `verbose=2` spends two lines on each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._epoch_start
        values = [f"{name}: {_shown(float(value))}" for name, value in (logs or {}).items()]
        epochs = self.params.get("epochs") if self.params else None
        print(" - ".join([f"Epoch {epoch + 1}/{epochs or '?'}", f"{seconds:.1f}s", *values]), flush=True)


def _shown(value: float) -> str:
    """A metric as Keras' progress bar shows it: four decimals, or scientific when tiny."""
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (train and validation) and samples/s to the active run.

    The metrics of each epoch are kept in memory and written in one synchronous batch by `flush`:
    `CheckpointEvery` calls it right before each checkpoint (this callback comes before it), and
    training's end calls it too. So every checkpoint holds exactly the epochs already in MLflow,
    and a resumed training, which restarts after its last checkpoint, neither loses nor repeats
    an epoch: steps already in the run's history (`logged_steps`) are not written again.
    A write per checkpoint instead of per epoch keeps the tracking off the training's time.
    """

    def __init__(self, samples_per_epoch: int, logged_steps: set[int] | None = None) -> None:
        super().__init__()
        self.samples_per_epoch = samples_per_epoch
        self.logged_steps = logged_steps or set()
        self.throughputs: list[float] = []
        self._epoch_start = 0.0
        self._pending: list[Metric] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._epoch_start
        # Validation is part of the epoch's wall time; throughput counts training samples.
        throughput = self.samples_per_epoch / seconds if seconds > 0 else 0.0
        self.throughputs.append(throughput)
        step = epoch + 1
        if step in self.logged_steps:
            return
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        metrics["samples_per_second"] = throughput
        timestamp = int(time.time() * 1000)
        self._pending.extend(Metric(name, value, timestamp, step) for name, value in metrics.items())

    def on_train_end(self, logs: dict | None = None) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the epochs logged since the last flush to the active run, and wait for it."""
        if not self._pending:
            return
        run_id = mlflow.active_run().info.run_id
        mlflow.MlflowClient().log_batch(run_id, metrics=self._pending, synchronous=True)
        self._pending = []


class TrialPruning(keras.callbacks.Callback):
    """Reports `metric` to an Optuna trial at each epoch end (step = epoch number) and stops
    training, as `EarlyStopping` does, when the study's pruner says the trial is not promising.

    Stopping instead of raising `optuna.TrialPruned` inside `fit` lets the train run end
    FINISHED with the model it reached; the caller reads `pruned_epoch` and prunes the trial.
    """

    def __init__(self, trial, metric: str) -> None:
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.pruned_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.metric)
        if value is None:
            return
        self.trial.report(float(value), step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_epoch = epoch + 1
            self.model.stop_training = True


class CheckpointEvery(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that checkpoints after the first epoch, then at the first epoch end at
    least `seconds` after the previous checkpoint (0: every epoch), calling `before_save` first.

    A checkpoint costs tens of milliseconds (the weights and optimizer state to HDF5), which
    is a large share of a sub-second epoch; `seconds` bounds both that cost and the work a
    killed training loses. `before_save` writes the pending epoch metrics, so that a checkpoint
    never runs ahead of what MLflow holds.

    Each checkpoint is written whole into its own folder (`epoch-NNNNN`: weights and the epoch
    number) and then made current by atomically replacing the symlink `current`, which the
    restore reads. Keras writes the two files in place, so a training killed while saving (the
    moment right after its metrics reach MLflow) left a half-written HDF5 file, or weights one
    epoch ahead of the saved epoch number; here the last complete checkpoint stays current.
    """

    CURRENT = "current"
    WEIGHTS = "latest.weights.h5"
    METADATA = "training_metadata.json"

    def __init__(self, backup_dir: str, seconds: float, before_save: Callable[[], None]) -> None:
        super().__init__(backup_dir)
        self.seconds = seconds
        self.before_save = before_save
        self._last_save: float | None = None
        current = Path(backup_dir) / self.CURRENT
        # The restore (Keras' own) reads these paths, through the symlink.
        self._weights_path = str(current / self.WEIGHTS)
        self._training_metadata_path = str(current / self.METADATA)

    @classmethod
    def holds_checkpoint(cls, backup_dir: Path) -> bool:
        """Whether `backup_dir` holds a complete checkpoint to resume from."""
        return (backup_dir / cls.CURRENT / cls.METADATA).is_file()

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self._last_save = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        if self._last_save is not None and now - self._last_save < self.seconds:
            return
        self.before_save()
        super().on_epoch_end(epoch, logs)
        self._last_save = time.monotonic()

    def _save_model(self) -> None:
        root = Path(self.backup_dir)
        root.mkdir(parents=True, exist_ok=True)
        state = root / f"epoch-{self._current_epoch:05d}"
        staging = root / f".{state.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        self.model.save_weights(str(staging / self.WEIGHTS))
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        (staging / self.METADATA).write_text(json.dumps(metadata))
        shutil.rmtree(state, ignore_errors=True)  # a complete one that a kill kept from being current
        staging.rename(state)
        link = root / f".{self.CURRENT}.partial"
        link.unlink(missing_ok=True)
        link.symlink_to(state.name, target_is_directory=True)
        link.replace(root / self.CURRENT)
        for older in root.glob("epoch-*"):
            if older != state:
                shutil.rmtree(older, ignore_errors=True)


class GeneratedSamplesLogger(keras.callbacks.Callback):
    """Logs a grid of samples from fixed latent vectors every `every` epochs (GAN training), as
    the MLflow image `generated_samples` at the epoch's step: the run's page steps through them."""

    KEY = "generated_samples"

    def __init__(self, every: int, class_names: list[str], seed: int = 0, count: int = 40) -> None:
        super().__init__()
        self.every = every
        self.class_names = class_names
        self.seed = seed
        self.count = count

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            grid = generated_grid(self.model, self.class_names, self.seed, self.count, f"epoch {epoch + 1}")
            tracking.log_stepped_image(grid, self.KEY, epoch + 1)


def generated_grid(model, class_names: list[str], seed: int, count: int, title: str):
    """`count` samples from seeded latents (class by class when conditional) tiled into one picture."""
    from pipelines import plots
    from pipelines.serving import generate, generator_inputs, servable

    generator = servable(model)
    num_classes = len(class_names) or 1
    inputs = generator_inputs(generator, count, seed, num_classes)
    samples = generate(generator, inputs)
    if "labels" in inputs:
        titles = [class_names[label] if class_names else str(label) for label in inputs["labels"]]
    else:
        titles = [""] * count
    return plots.sample_grid(samples, titles, columns=num_classes if num_classes > 1 else 8, title=title)


class GradientFlowProbe(keras.callbacks.Callback):
    """Logs ‖∂loss/∂h_t‖ for every step t of the first recurrent layer at chosen epochs.

    Epoch 0 probes before training, epoch k after the k-th epoch (later ones are skipped). Each
    probe uses the same batch `(x, y)` and the compiled loss, logs the metric
    `gradient_norm_ratio_first_to_last` (‖∂loss/∂h_0‖ / ‖∂loss/∂h_{T-1}‖) at the probe's epoch,
    and rewrites the figure `gradient_flow.png` and the table `gradient_flow.csv` (epoch, step,
    norm) with every probe so far, so an interrupted run keeps what it measured, and a resumed
    run starts from the table it logged before.
    """

    TABLE = "gradient_flow.csv"

    def __init__(self, x: np.ndarray, y: np.ndarray, epochs: list[int]) -> None:
        super().__init__()
        self.x = x
        self.y = y
        self.epochs = sorted(set(epochs))
        self.norms: dict[int, np.ndarray] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.norms = self._logged_norms()
        if 0 in self.epochs and 0 not in self.norms:
            self._probe(0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 in self.epochs:
            self._probe(epoch + 1)

    def _probe(self, epoch: int) -> None:
        from models.recurrent import hidden_state_gradient_norms
        from pipelines import plots

        norms = hidden_state_gradient_norms(self.model, self.x, self.y, _batch_loss(self.model.loss))
        self.norms[epoch] = norms
        if norms[-1] > 0:
            mlflow.log_metric("gradient_norm_ratio_first_to_last", float(norms[0] / norms[-1]), step=epoch)
        rows = [
            f"{probed},{step},{norm!r}"
            for probed, probed_norms in sorted(self.norms.items())
            for step, norm in enumerate(probed_norms.tolist())
        ]
        mlflow.log_text("\n".join(["epoch,step,norm", *rows]) + "\n", self.TABLE)
        title = f"{self.model.name}: gradient flow through the hidden states"
        tracking.log_figure(plots.gradient_flow(self.norms, title=title), "gradient_flow.png")

    def _logged_norms(self) -> dict[int, np.ndarray]:
        """The probes the active run already logged (a resumed run), by epoch; empty for a new run."""
        run = mlflow.active_run()
        if run is None or self.TABLE not in {
            artifact.path for artifact in mlflow.MlflowClient().list_artifacts(run.info.run_id)
        }:
            return {}
        rows = mlflow.artifacts.load_text(mlflow.get_artifact_uri(self.TABLE)).splitlines()[1:]
        by_epoch: dict[int, list[float]] = {}
        for row in rows:
            epoch, _, norm = row.split(",")
            by_epoch.setdefault(int(epoch), []).append(float(norm))
        return {epoch: np.array(norms) for epoch, norms in by_epoch.items()}


def _batch_loss(loss):
    """The compiled loss as a batch-mean function of (y_true, y_pred); `compile` also takes a name."""
    if callable(loss):
        return loss
    per_example = keras.losses.get(loss)
    return lambda y_true, y_pred: keras.ops.mean(per_example(y_true, y_pred))
