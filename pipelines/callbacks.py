"""Keras callbacks for side work during training: MLflow metric logging, throughput."""

from __future__ import annotations

import time

import keras
import mlflow


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (train and validation) and samples/s to the active run.

    Logging is asynchronous so that the tracking store never holds up the next epoch.
    """

    def __init__(self, samples_per_epoch: int) -> None:
        super().__init__()
        self.samples_per_epoch = samples_per_epoch
        self.throughputs: list[float] = []
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._epoch_start
        # Validation is part of the epoch's wall time; throughput counts training samples.
        throughput = self.samples_per_epoch / seconds if seconds > 0 else 0.0
        self.throughputs.append(throughput)
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        metrics["samples_per_second"] = throughput
        mlflow.log_metrics(metrics, step=epoch + 1, synchronous=False)
