"""Checkpoints and metric writes: every `train.checkpoint_seconds`, never one ahead of the other."""

from __future__ import annotations

import keras
import mlflow
import numpy as np

from pipelines.callbacks import CheckpointEvery, MlflowEpochLogger

EPOCHS = 5


class _SaveRecorder(CheckpointEvery):
    """Records, at each save, which epoch it is and how many epochs MLflow already holds."""

    def __init__(self, backup_dir: str, seconds: float, logger: MlflowEpochLogger) -> None:
        super().__init__(backup_dir, seconds=seconds, before_save=logger.flush)
        self.saves: list[tuple[int, int]] = []

    def _save_model(self) -> None:
        run_id = mlflow.active_run().info.run_id
        logged = len(mlflow.MlflowClient().get_metric_history(run_id, "loss"))
        self.saves.append((self._current_epoch, logged))
        super()._save_model()


def _fit(tmp_path, seconds: float) -> tuple[list[tuple[int, int]], list[int]]:
    """A tiny fit with the train stage's two callbacks; (saves, logged loss steps)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), np.zeros(32, "int32")
    with mlflow.start_run() as run:
        logger = MlflowEpochLogger(samples_per_epoch=len(y))
        checkpoint = _SaveRecorder(str(tmp_path / "backup"), seconds, logger)
        model.fit(x, y, epochs=EPOCHS, batch_size=8, callbacks=[logger, checkpoint], verbose=0)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    return checkpoint.saves, sorted(entry.step for entry in history)


def test_checkpoint_seconds_zero_checkpoints_every_epoch_after_writing_its_metrics(store, tmp_path):
    saves, logged = _fit(tmp_path, seconds=0)
    assert saves == [(epoch, epoch) for epoch in range(1, EPOCHS + 1)]
    assert logged == list(range(1, EPOCHS + 1))


def test_a_long_checkpoint_interval_checkpoints_after_the_first_epoch_and_still_logs_every_epoch(
    store, tmp_path
):
    saves, logged = _fit(tmp_path, seconds=3600)
    assert saves == [(1, 1)]  # a resume point and the first numbers in the UI, early
    assert logged == list(range(1, EPOCHS + 1))  # the rest is written when training ends
