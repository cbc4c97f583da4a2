"""Shared fixtures: a TFDS data dir per test process and an MLflow sqlite store per test."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Embedded datasets are generated once per test process, in a folder of their own; TFDS reads
# this variable when it is imported, so it is set before any test module imports it. Each
# pytest-xdist worker gets its own folder: two workers generating one dataset in the same folder
# would race for its final name.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="deeparch-tfds-"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["TFDS_DATA_DIR"] = str(_DATA_DIR)
else:
    os.environ.setdefault("TFDS_DATA_DIR", str(_DATA_DIR))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pytest-xdist runs one worker per core: each worker's TensorFlow (and the `deeparch` processes
# its tests start, which inherit this) gets its share of the cores instead of a thread pool per
# core each, whose threads would spin waiting for a core the other worker holds (about 5 % of the
# suite's CPU time, measured).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _threads)

# An xdist worker has sent every result to the controller by the time its atexit handlers run.
# Python's finalisation after them, tearing down the TensorFlow state of a whole suite object by
# object, kept `make test` waiting 7.7 s after its last test (2.6 s with this exit; one timed run
# each) and writes nothing. The handler runs last: atexit runs the last registered first, and
# this one is registered first.
if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(os._exit, 0)

# pytest-xdist (`--dist loadscope`) hands out whole modules in collection order: a slow module
# collected last runs alone on one worker while the other idles (test_tune, alphabetically late,
# did). Modules are collected slowest first, by the per-module sums of `pytest --durations=0`;
# those not named keep their order after them.
SLOWEST_MODULES_FIRST = (
    "test_metric_values",  # with test_gan_pipeline (SAME_WORKER)
    "test_pipeline",
    "test_compare",
    "test_api",
    "test_checkpointing",
    "test_tune",
    "test_tables",
    "test_recurrent_models",
    "test_speech",
    "test_plugins",
    "test_recurrent_pipeline",
    "test_prepared_data",
    "test_cache",
    "test_data",
    "test_cnn_images",
    "test_own_data",
    "test_text",
    "test_gan_model",
    "test_cli_startup",
    "test_readers",
    "test_offline",
    "test_gan_pipeline",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(SLOWEST_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a module's own order


# Modules that read the same session fixture go to one worker as one unit, so that the fixture's
# pipeline run is made once: test_gan_pipeline's `gan_run` is also what test_metric_values scores
# again from its exported SavedModels. Each module left alone would make its own run on its
# worker (about 15 s). Without xdist a session fixture is made once anyway.
SAME_WORKER = {"tests/test_gan_pipeline.py": "tests/test_metric_values.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SAME_WORKER.get(scope, scope)

    return SharedRunScheduling(config, log)


TINY = ["data.max_examples=200", "train.epochs=1", "train.batch_size=32"]


@functools.cache
def _empty_store_database() -> Path:
    """An MLflow sqlite database with its tables created, once per test process: creating them
    (MLflow's schema migrations) takes seconds, copying the file milliseconds.

    MLflow checks each store it opens against the newest revision of its migration scripts, and
    finds that revision by loading and compiling all of them (about 70 files) every time: 0.2-0.3 s
    a store, paid by nearly every test here, where a user's process opens one store. The revision
    is the installed MLflow's, so it is looked up once per test process."""
    import mlflow
    from mlflow.store.db import utils as store_utils

    store_utils._get_latest_schema_revision = functools.cache(store_utils._get_latest_schema_revision)
    path = Path(tempfile.mkdtemp(prefix="deeparch-store-")) / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def _new_store(folder: Path) -> str:
    """A sqlite MLflow store in `folder/mlruns`: a copy of an empty database whose tables already
    exist; everything else (experiments, runs, artifacts) is created by the code under test, as on
    a user's machine. Returns its URI."""
    (folder / "mlruns").mkdir(parents=True)
    shutil.copyfile(_empty_store_database(), folder / "mlruns" / "mlflow.db")
    return f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite MLflow store in tmp_path, used through MLFLOW_TRACKING_URI; cwd is tmp_path."""
    return use_store(_new_store(tmp_path), monkeypatch)


@contextlib.contextmanager
def shared_store(folder: Path) -> Iterator[str]:
    """A fresh sqlite MLflow store in `folder` (cwd and MLFLOW_TRACKING_URI point at it) for a
    module-scoped fixture: one pipeline run that several tests read costs one run, not one each."""
    with pytest.MonkeyPatch.context() as patch:
        yield use_store(_new_store(folder), patch)


@dataclass
class SharedRun:
    """What a module fixture's `deeparch` command left: the store it wrote to, its exit status and output."""

    uri: str
    status: int
    output: str
    error: str


# One epoch of a conditional GAN on 200 digits, judged by a small classifier trained on digits (an
# MLP: about 96 % on digits in 10 epochs, 2.4 s where a small CNN's 15 took 4-5 s).
GAN_GENERATED_SAMPLES = 256
TINY_GAN_EVALUATOR = """
name: tiny-evaluator
data: {name: digits}
model: {architecture: mlp, units: [32]}
train: {epochs: 10, batch_size: 64, learning_rate: 1.0e-2}
"""


@dataclass
class GanRun(SharedRun):
    scipy_warnings: list
    export: Path


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory) -> Iterator[GanRun]:
    """One conditional GAN run, prepare to export, scored by a tiny evaluator: test_gan_pipeline
    reads its logs, test_metric_values recomputes its score (one worker: SAME_WORKER)."""
    import warnings

    import scipy.linalg

    folder = tmp_path_factory.mktemp("gan")
    evaluator = folder / "tiny-evaluator.yaml"
    evaluator.write_text(TINY_GAN_EVALUATOR)
    with shared_store(folder / "store") as uri:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status, output, error = run_cli(
                "run",
                "-e",
                "gan-digits",
                *TINY,
                "train.sample_every=1",
                f"evaluate.generated_samples={GAN_GENERATED_SAMPLES}",
                f"evaluate.evaluator={evaluator}",
                "--out",
                str(folder / "generator"),
            )
    # Yielded outside the store's context: a session fixture's environment would outlive its modules.
    linalg = [w for w in caught if issubclass(w.category, scipy.linalg.LinAlgWarning)]
    yield GanRun(uri, status, output, error, linalg, folder / "generator")


def run_cli(*args: str) -> tuple[int, str, str]:
    """`deeparch ...` in this process outside a test (in a module fixture): (status, stdout, stderr)."""
    from pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def use_store(uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this test (environment, cwd, MLflow's client) at the store `uri` (`_new_store`'s)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(Path(uri.removeprefix("sqlite:///")).parent.parent)
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
