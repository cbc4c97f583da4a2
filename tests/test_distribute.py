"""tf.distribute: mirrored on two logical CPU devices, and two workers that train like one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from .conftest import TINY, all_runs

# No dropout and no batch norm: each replica would draw its own masks and normalise with its own
# half-batch's statistics, and the weights could not be compared.
DETERMINISTIC = [*TINY, "model.dropout=0.0", "model.batch_norm=false", "train.epochs=2"]

WITH_TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _train_runs(uri: str) -> list:
    return [r for r in all_runs(uri) if r.data.tags.get("stage") == "train"]


def _weights(model_uri: str) -> list[np.ndarray]:
    return [np.asarray(w) for w in mlflow.tensorflow.load_model(model_uri).get_weights()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpu_devices(store):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WITH_TWO_CPUS,
            "run",
            "-e",
            "mlp-digits",
            *DETERMINISTIC,
            "train.strategy=mirrored",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (train,) = _train_runs(store)
    assert train.data.params["replicas"] == "2"
    assert train.data.params["train.strategy"] == "mirrored"


def _two_workers(tmp_path: Path, overrides: list[str], environment: dict[str, str] | None = None) -> None:
    """Run `deeparch run -e mlp-digits` as a cluster of two workers on loopback, until both end."""
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"
        folder.mkdir()
        env = {
            **os.environ,
            **(environment or {}),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pipelines.cli",
                    "run",
                    "-e",
                    "mlp-digits",
                    *overrides,
                    "train.strategy=multi_worker",
                    f"export.dir={tmp_path / 'exports'}",
                ],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for worker in workers:
        _, error = worker.communicate(timeout=600)
        assert worker.returncode == 0, error[-6000:]


@pytest.mark.slow
def test_two_workers_train_the_same_weights_as_one_process_and_only_the_chief_logs(store, tmp_path):
    _two_workers(tmp_path, DETERMINISTIC)
    (cluster_train,) = _train_runs(store)  # the chief's; the other worker logged to a scratch store
    assert cluster_train.data.params["replicas"] == "2"
    # One shard file per split is too few to give each worker its own: each keeps its share of batches.
    assert cluster_train.data.params["input_sharding"] == "data"
    assert len(list((tmp_path / "exports").iterdir())) == 1

    single = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "train", "-e", "mlp-digits", *DETERMINISTIC],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    single_train = next(r for r in _train_runs(store) if r.info.run_id != cluster_train.info.run_id)
    for together, alone in zip(
        _weights(cluster_train.data.tags["model_uri"]),
        _weights(single_train.data.tags["model_uri"]),
        strict=True,
    ):
        np.testing.assert_allclose(together, alone, atol=1e-4)
    assert Path.cwd() == tmp_path


@pytest.mark.slow
def test_two_workers_read_their_own_shard_files_when_there_are_enough(store, tmp_path, monkeypatch):
    from pipelines.config import DataConfig
    from pipelines.data import load_dataset, prepared

    # Prepared here in many small shards; both workers find this copy through the shared store.
    datasets = tmp_path / "datasets"
    monkeypatch.setattr(prepared, "SHARD_BYTES", 16_384)
    monkeypatch.setattr(prepared, "RECORD_BYTES", 4096)
    train_files = load_dataset(DataConfig(name="digits"), datasets).splits["train"].files
    assert len(train_files) >= 4
    _two_workers(tmp_path, [*TINY, "data.max_examples=null"], {"DEEPARCH_DATASET_STORE": str(datasets)})
    (cluster_train,) = _train_runs(store)
    assert cluster_train.data.params["input_sharding"] == "file"
    assert cluster_train.info.status == "FINISHED"
