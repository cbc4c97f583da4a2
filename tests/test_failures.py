"""Runs that survive failure: signals, a killed training resumed, concurrent writers, long values."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import mlflow
import pytest

from .conftest import TINY, all_runs, run_cli, shared_store, use_store

DEEPARCH = [sys.executable, "-m", "pipelines.cli"]
# Long enough to be interrupted mid-run: MNIST-1D's 3,600 training examples, small batches; a
# checkpoint (and metric write) every epoch, so that the kill lands between two of them on any machine.
SLOW_TRAINING = [
    "train",
    "-e",
    "mlp-mnist1d",
    "train.batch_size=16",
    "train.augment_shift=0",
    "train.checkpoint_seconds=0",
]


def _train_run(uri: str):
    runs = [r for r in all_runs(uri) if r.data.tags.get("stage") == "train"]
    return runs[0] if runs else None


def _wait_for_epochs(uri: str, process: subprocess.Popen, epochs: int, timeout: float = 240):
    """The train run, once it has logged `epochs` epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        run = _train_run(uri)
        if (
            run is not None
            and len(mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "loss")) >= epochs
        ):
            return run
        time.sleep(0.3)
    raise AssertionError(f"training did not reach {epochs} epochs in {timeout} s")


@pytest.mark.slow
def test_sigterm_marks_the_run_killed_not_running(store):
    process = subprocess.Popen(
        [*DEEPARCH, *SLOW_TRAINING, "train.epochs=100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    run = _wait_for_epochs(store, process, 1)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert b"KILLED" in error and b"Traceback" not in error
    run = mlflow.MlflowClient(store).get_run(run.info.run_id)
    assert run.info.status == "KILLED"
    assert "SIGTERM" in run.data.tags["error"]


@pytest.mark.slow
def test_killed_training_resumes_in_the_same_run_without_duplicate_or_missing_epochs(store, cli):
    epochs = 12
    process = subprocess.Popen(
        [*DEEPARCH, *SLOW_TRAINING, f"train.epochs={epochs}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    run = _wait_for_epochs(store, process, 3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    client = mlflow.MlflowClient(store)
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # SIGKILL cannot be caught
    logged_before = len(client.get_metric_history(run.info.run_id, "loss"))
    assert logged_before < epochs

    status, output, error = cli("train", "--resume", run.info.run_id)
    assert status == 0, error
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    for metric in ("loss", "val_loss", "accuracy"):
        steps = [entry.step for entry in client.get_metric_history(run.info.run_id, metric)]
        assert sorted(steps) == list(range(1, epochs + 1)), (metric, steps)
    assert finished.data.tags["model_uri"]
    assert len([r for r in all_runs(store) if r.data.tags.get("stage") == "train"]) == 1


LONG_DESCRIPTION = "x" * 7000


@pytest.fixture(scope="module")
def finished_train(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A store holding one finished train run, whose description is too long for an MLflow param:
    (store URI, that run's id). Two tests read it: one training, not one each."""
    with shared_store(tmp_path_factory.mktemp("finished")) as uri:
        status, _, error = run_cli("train", "-e", "mlp-digits", *TINY, f"description={LONG_DESCRIPTION}")
        assert status == 0, error
        yield uri, _train_run(uri).info.run_id


@pytest.mark.slow  # make test's time budget: the `finished_train` store trains once more
def test_resume_refuses_a_finished_run(finished_train, cli, monkeypatch):
    uri, run_id = finished_train
    use_store(uri, monkeypatch)
    status, _, error = cli("train", "--resume", run_id)
    assert status == 2 and "nothing to resume" in error


@pytest.mark.slow
def test_four_concurrent_runs_on_one_sqlite_store_all_finish_with_everything_logged(store):
    processes = [
        subprocess.Popen(
            [*DEEPARCH, "run", "-e", "mlp-digits", *TINY, f"seed={seed}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in range(4)
    ]
    for process in processes:
        _, error = process.communicate(timeout=600)
        assert process.returncode == 0, error.decode()[-2000:]
    runs = all_runs(store)
    pipelines = [r for r in runs if r.data.tags.get("stage") == "pipeline"]
    assert len(pipelines) == 4 and all(r.info.status == "FINISHED" for r in pipelines)
    for stage in ("prepare", "train", "evaluate", "export"):
        stage_runs = [r for r in runs if r.data.tags.get("stage") == stage]
        assert len(stage_runs) >= 1 and all(r.info.status == "FINISHED" for r in stage_runs)
    trains = [r for r in runs if r.data.tags.get("stage") == "train"]
    assert sorted(r.data.params["seed"] for r in trains) == ["0", "1", "2", "3"]
    for run in trains:
        assert "loss" in run.data.metrics and "train.epochs" in run.data.params


@pytest.mark.slow  # make test's time budget: the `finished_train` store trains once more
def test_a_config_value_too_long_for_a_param_is_truncated_with_a_hash_and_kept_whole_as_artifact(
    finished_train, monkeypatch
):
    uri, run_id = finished_train
    use_store(uri, monkeypatch)
    value = mlflow.MlflowClient(uri).get_run(run_id).data.params["description"]
    assert len(value) <= 6000 and "sha256:" in value
    config_text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    assert LONG_DESCRIPTION in config_text


# make test's time budget: test_pipeline.py runs the same failing training (its status and reason).
@pytest.mark.slow
def test_a_failing_stage_leaves_its_traceback_as_an_artifact(store, cli):
    status, _, _ = cli("run", "-e", "mlp-digits", *TINY, "train.learning_rate=1e12", "train.epochs=2")
    assert status == 1
    run = _train_run(store)
    assert run.info.status == "FAILED"
    traceback_text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/error/traceback.txt")
    assert "NonFiniteLossError" in traceback_text


def test_a_kill_while_checkpointing_leaves_the_previous_checkpoint_to_resume_from(tmp_path):
    import keras
    import numpy as np

    from pipelines.callbacks import CheckpointEvery

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")

    def model():
        keras.utils.set_random_seed(0)
        built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        built.compile(optimizer="adam", loss="binary_crossentropy")
        return built

    class KilledOnThirdSave(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.weights_after_two = [w.copy() for w in self.model.get_weights()]
            if epoch == 2:  # runs before the checkpoint's save: a kill halfway through writing it

                def half_written(filepath, overwrite=True):
                    with open(filepath, "wb") as partial:
                        partial.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
                    raise KeyboardInterrupt

                self.model.save_weights = half_written

    first, probe = model(), KilledOnThirdSave()
    checkpoint = CheckpointEvery(str(tmp_path), seconds=0, before_save=lambda: None)
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, epochs=5, verbose=0, callbacks=[probe, checkpoint])
    assert CheckpointEvery.holds_checkpoint(tmp_path)

    resumed, restored = model(), {}

    def record_restored(logs):
        restored.update(epoch=resumed._initial_epoch, weights=resumed.get_weights())

    record = keras.callbacks.LambdaCallback(on_train_begin=record_restored)
    checkpoint = CheckpointEvery(str(tmp_path), seconds=0, before_save=lambda: None)
    history = resumed.fit(x, y, epochs=5, verbose=0, callbacks=[checkpoint, record])
    assert restored["epoch"] == 2
    for saved, loaded in zip(probe.weights_after_two, restored["weights"], strict=True):
        np.testing.assert_array_equal(saved, loaded)
    assert len(history.history["loss"]) == 3
