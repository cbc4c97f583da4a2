"""Shared fixtures: a TFDS data dir per session and an MLflow sqlite store per test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Embedded datasets are generated once per session, in a folder of their own; TFDS reads this
# variable when it is imported, so it is set before any test module imports it.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="deeparch-tfds-"))
os.environ.setdefault("TFDS_DATA_DIR", str(_DATA_DIR))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY = ["data.max_examples=200", "train.epochs=1", "train.batch_size=32"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite MLflow store in tmp_path, used through MLFLOW_TRACKING_URI; cwd is tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    import mlflow

    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `deeparch ...` in this process; returns (exit status, stdout, stderr)."""
    from pipelines.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return invoke


def all_runs(uri: str):
    """Every run in the store, newest first, as a list of mlflow Run objects."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, max_results=1000) if experiments else []


def assert_each_refused_before_any_run(
    store: str, cli, tmp_path: Path, experiment: str, cases: dict, extra=()
):
    """Run `experiment` with each case's overrides (`cases`: name -> (overrides of a scratch folder,
    fragments)): each exits 2 with every fragment in its error, no traceback, and no MLflow run.
    One store for every case: a fresh sqlite store costs seconds to create."""
    for case, (overrides, expected) in cases.items():
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        status, _, error = cli("run", "-e", experiment, *overrides(folder), *extra)
        assert status == 2, f"{case}: {error}"
        for fragment in expected:
            assert fragment in error, f"{case}: {fragment!r} not in {error!r}"
        assert "Traceback" not in error
        assert all_runs(store) == [], f"{case}: a run was created"
