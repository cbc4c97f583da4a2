"""The stage cache: unchanged stages are reused, changed ones and their dependants recomputed.

The tests share one store that starts with one finished run of the pipeline; each test compares
the store before and after what it runs (counts per stage, the newest run of the same config)."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import TINY, all_runs, run_cli, shared_store, use_store


@pytest.fixture(scope="module")
def cached_store(tmp_path_factory) -> Iterator[str]:
    with shared_store(tmp_path_factory.mktemp("cache")) as uri:
        status, _, error = run_cli("run", "-e", "mlp-digits", *TINY)
        assert status == 0, error
        yield uri


@pytest.fixture
def store(cached_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_store(cached_store, monkeypatch)


def _stage_counts(uri: str) -> Counter:
    return Counter(run.data.tags["stage"] for run in all_runs(uri))


def _added(uri: str, before: Counter) -> dict[str, int]:
    return {stage: count for stage, count in (_stage_counts(uri) - before).items() if count}


def _newest_pipeline(uri: str, config_hash: str | None = None):
    """The newest pipeline run, of the config with `config_hash` when given."""
    return next(
        run
        for run in all_runs(uri)
        if run.data.tags["stage"] == "pipeline" and config_hash in (None, run.data.tags["config_hash"])
    )


def _base_hash(uri: str) -> str:
    """The config hash of the run the store started with (its oldest pipeline run)."""
    return [run for run in all_runs(uri) if run.data.tags["stage"] == "pipeline"][-1].data.tags["config_hash"]


def test_unchanged_run_reuses_every_stage_and_links_them_from_the_new_parent(store, cli):
    before, first = _stage_counts(store), _newest_pipeline(store, _base_hash(store))
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY)
    assert status == 0
    for stage in ("prepare", "train", "evaluate", "export"):
        assert f"reused {stage} from run {first.data.tags[f'{stage}_run_id']}" in output
    assert _added(store, before) == {"pipeline": 1}
    second = _newest_pipeline(store)
    assert second.info.run_id != first.info.run_id
    assert second.data.tags["reused.train"] == first.data.tags["train_run_id"]
    assert second.data.metrics["test_accuracy"] == first.data.metrics["test_accuracy"]


# make test's time budget: make test's in-process study (test_tune.py) trains each trial's
# config while reusing one prepare run.
@pytest.mark.slow
def test_changing_epochs_reruns_train_evaluate_export_but_not_prepare(store, cli):
    before = _stage_counts(store)
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY, "train.epochs=2")
    assert status == 0
    assert "reused prepare" in output and "reused train" not in output
    assert _added(store, before) == {"pipeline": 1, "train": 1, "evaluate": 1, "export": 1}


@pytest.mark.slow  # make test's time budget: a second run of every stage
def test_force_recomputes_one_stage_and_what_depends_on_it(store, cli):
    before = _stage_counts(store)
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY, "--force", "evaluate")
    assert status == 0
    assert "reused train" in output and "reused evaluate" not in output
    assert _added(store, before) == {"pipeline": 1, "evaluate": 1}, "export reads train only"
    before = _stage_counts(store)
    assert cli("run", "-e", "mlp-digits", *TINY, "--force")[0] == 0
    assert _added(store, before) == {"pipeline": 1, "prepare": 1, "train": 1, "evaluate": 1, "export": 1}


def test_force_rejects_an_unknown_stage(store, cli):
    before = _stage_counts(store)
    status, _, error = cli("run", "-e", "mlp-digits", *TINY, "--force", "training")
    assert status == 2 and "allowed: all, prepare, train, evaluate, export" in error
    assert _added(store, before) == {}


def test_export_is_recomputed_when_its_saved_model_was_deleted(store, cli):
    shutil.rmtree(Path(_newest_pipeline(store, _base_hash(store)).data.tags["export_path"]))
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY)
    assert status == 0 and "reused train" in output and "reused export" not in output
    assert Path(_newest_pipeline(store).data.tags["export_path"]).is_dir()
