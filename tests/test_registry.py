"""Registering exported models and promoting a version to `champion` only when it deserves it."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import pytest

from .conftest import TINY, all_runs, run_cli, shared_store, use_store


def _train_runs(uri: str) -> list:
    return [r for r in all_runs(uri) if r.data.tags.get("stage") == "train"]


def _train_evaluate_register(cli, uri: str, *overrides: str) -> str:
    """Train and evaluate through the CLI, export with --register; return the new version."""
    assert cli("train", "-e", "mlp-digits", *TINY, *overrides)[0] == 0
    train_run = _train_runs(uri)[0]
    assert cli("evaluate", "--run", train_run.info.run_id)[0] == 0
    status, output, _ = cli("export", "--run", train_run.info.run_id, "--register", "digits-classifier")
    assert status == 0
    return output.split("version ")[-1].strip()


# make test's time budget: three models trained, evaluated and exported. make test registers a
# custom model and promotes it (test_plugins.py).
@pytest.mark.slow
def test_promotion_accepts_a_good_version_and_refuses_a_worse_one(store, cli):
    good = _train_evaluate_register(cli, store, "train.epochs=3")
    status, output, _ = cli("promote", "digits-classifier", "--version", good)
    assert status == 0 and "now the champion" in output
    client = mlflow.MlflowClient(store)
    assert str(client.get_model_version_by_alias("digits-classifier", "champion").version) == good

    # One step of a tiny learning rate: the same data, a much worse model.
    worse = _train_evaluate_register(cli, store, "train.epochs=1", "train.learning_rate=1e-6", "seed=3")
    status, _, error = cli("promote", "digits-classifier", "--version", worse)
    assert status == 1
    assert "worse than the champion" in error and "unchanged" in error
    assert str(client.get_model_version_by_alias("digits-classifier", "champion").version) == good


@pytest.mark.slow  # make test's time budget (README, Development)
def test_promotion_refuses_a_version_below_the_experiments_threshold(store, cli):
    version = _train_evaluate_register(cli, store, "train.learning_rate=1e-6", "evaluate.min_accuracy=0.99")
    status, _, error = cli("promote", "digits-classifier", "--version", version)
    assert status == 1 and "below the experiment's evaluate.min_accuracy" in error
    client = mlflow.MlflowClient(store)
    assert "champion" not in client.get_registered_model("digits-classifier").aliases


@pytest.fixture(scope="module")
def unevaluated(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A store where model `unevaluated` has version 1, exported from a train run never evaluated:
    (store URI, that train run's id)."""
    with shared_store(tmp_path_factory.mktemp("registry")) as uri:
        assert run_cli("train", "-e", "mlp-digits", *TINY)[0] == 0
        run_id = _train_runs(uri)[0].info.run_id
        assert run_cli("export", "--run", run_id, "--register", "unevaluated")[0] == 0
        yield uri, run_id


@pytest.mark.slow  # make test's time budget: the `unevaluated` store trains and exports once more
def test_promotion_refuses_a_version_without_evaluation(unevaluated, cli, monkeypatch):
    uri, run_id = unevaluated
    use_store(uri, monkeypatch)
    status, _, error = cli("promote", "unevaluated", "--version", "1")
    assert status == 1 and f"deeparch evaluate --run {run_id}" in error


@pytest.mark.slow  # make test's time budget: the `unevaluated` store trains and exports once more
def test_promoting_an_unknown_version_is_a_usage_error(unevaluated, cli, monkeypatch):
    use_store(unevaluated[0], monkeypatch)
    status, _, error = cli("promote", "unevaluated", "--version", "7")
    assert status == 2 and "has no version '7'" in error
