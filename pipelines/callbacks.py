"""Keras callbacks for side work during training: MLflow metric logging, throughput, probes."""

from __future__ import annotations

import time

import keras
import mlflow
import numpy as np


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (train and validation) and samples/s to the active run.

    Each epoch is one batched write, finished before the epoch's checkpoint is taken (this
    callback comes before `BackupAndRestore`), so a resumed training neither loses nor repeats
    an epoch: steps already in the run's history (`logged_steps`) are not written again.
    """

    def __init__(self, samples_per_epoch: int, logged_steps: set[int] | None = None) -> None:
        super().__init__()
        self.samples_per_epoch = samples_per_epoch
        self.logged_steps = logged_steps or set()
        self.throughputs: list[float] = []
        self._epoch_start = 0.0

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
        mlflow.log_metrics(metrics, step=step, synchronous=True)


class GeneratedSamplesLogger(keras.callbacks.Callback):
    """Logs a grid of samples from fixed latent vectors every `every` epochs (GAN training)."""

    def __init__(self, every: int, class_names: list[str], seed: int = 0, count: int = 40) -> None:
        super().__init__()
        self.every = every
        self.class_names = class_names
        self.seed = seed
        self.count = count

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            log_generated_grid(
                self.model,
                self.class_names,
                self.seed,
                self.count,
                f"epoch {epoch + 1}",
                f"generated/epoch_{epoch + 1:04d}.png",
            )


def log_generated_grid(model, class_names: list[str], seed: int, count: int, title: str, path: str) -> None:
    """Generate `count` samples (class by class when conditional) and log them as one figure."""
    from pipelines import plots
    from pipelines.serving import generator_inputs, model_inputs, servable

    generator = servable(model)
    num_classes = len(class_names) or 1
    inputs = generator_inputs(generator, count, seed, num_classes)
    samples = np.asarray(generator.predict(model_inputs(generator, inputs), verbose=0))
    if "labels" in inputs:
        titles = [class_names[label] if class_names else str(label) for label in inputs["labels"]]
    else:
        titles = [""] * count
    mlflow.log_figure(
        plots.sample_grid(samples, titles, columns=num_classes if num_classes > 1 else 8, title=title), path
    )


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
        mlflow.log_figure(plots.gradient_flow(self.norms, title=title), "gradient_flow.png")

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
