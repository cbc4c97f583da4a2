"""Checkpoints and metric writes: every `train.checkpoint_seconds`, never one ahead of the other;
a training killed after a checkpoint resumes from it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import keras
import mlflow
import numpy as np
import pytest

from pipelines import tracking
from pipelines.callbacks import CheckpointEvery, MlflowEpochLogger

from .conftest import all_runs

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


def _first_checkpoint(process: subprocess.Popen, timeout: float = 120) -> str:
    """The id of the train run whose training `process` runs, once it holds a checkpoint; polls
    the checkpoint folder, not MLflow, so that a kill right after lands mid-training."""
    checkpoints = tracking.checkpoint_dir("any").parent
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = list(checkpoints.glob(f"*/{CheckpointEvery.CURRENT}/{CheckpointEvery.METADATA}"))
        if found:
            return found[0].parent.parent.name
        time.sleep(0.02)
    raise AssertionError(f"training left no checkpoint in {timeout} s")


# make test's time budget: a fresh `deeparch` process killed, then resumed (about 17 s of a worker).
# make test resumes runs in process (test_failures' kill while checkpointing, the gradient probe of
# a resumed fit); README's Development section says this one is in make test-slow.
@pytest.mark.slow
def test_a_sigkilled_cli_training_resumes_through_the_cli_logging_each_epoch_once(store, cli):
    # The first checkpoint comes after epoch 1, the next one 10 s later (train.checkpoint_seconds):
    # the epochs trained between it and the kill are lost, trained again and logged once.
    epochs = 30
    process = subprocess.Popen(
        [
            *[sys.executable, "-m", "pipelines.cli", "train", "-e", "mlp-digits"],
            *["data.max_examples=64", "model.units=[8]", f"train.epochs={epochs}"],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run_id = _first_checkpoint(process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "killed mid-training, not after it"
    client = mlflow.MlflowClient(store)
    assert client.get_run(run_id).info.status == "RUNNING"  # SIGKILL cannot be caught
    assert len(client.get_metric_history(run_id, "loss")) < epochs

    status, _, error = cli("train", "--resume", run_id)
    assert status == 0, error
    assert client.get_run(run_id).info.status == "FINISHED"
    for metric in ("loss", "val_loss", "accuracy"):
        steps = [entry.step for entry in client.get_metric_history(run_id, metric)]
        assert sorted(steps) == list(range(1, epochs + 1)), (metric, steps)
    assert [r.info.run_id for r in all_runs(store) if r.data.tags.get("stage") == "train"] == [run_id]
