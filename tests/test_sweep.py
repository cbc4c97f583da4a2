"""`deeparch sweep`: a grid (or a sample) of pipeline runs under one sweep run, validated, resumable."""

from __future__ import annotations

import mlflow
import pytest

from pipelines.config import ConfigError
from pipelines.sweep import plan_sweep, split_values

from .conftest import TINY, all_runs

GRID = ("train.learning_rate=1e-3,3e-3", "model.units=[16],[32,16]")


def _runs_by_stage(uri: str) -> dict[str, list]:
    runs: dict[str, list] = {}
    for run in all_runs(uri):
        runs.setdefault(run.data.tags.get("stage"), []).append(run)
    return runs


def test_axis_values_split_on_top_level_commas_only():
    assert split_values("1e-3,3e-3") == ["1e-3", "3e-3"]
    assert split_values("[32],[64,64]") == ["[32]", "[64,64]"]
    assert split_values("{a: 1, b: 2},{a: 3}") == ["{a: 1, b: 2}", "{a: 3}"]
    assert split_values("'x,y',z") == ["'x,y'", "z"]
    assert split_values("[64,64]") == ["[64,64]"]


def test_plan_is_the_product_of_the_axes_with_plain_overrides_in_every_combination():
    plan = plan_sweep("mlp-digits", ["train.epochs=2", *GRID])
    assert [c.label for c in plan.combinations] == [
        "train.learning_rate=1e-3 model.units=[16]",
        "train.learning_rate=1e-3 model.units=[32,16]",
        "train.learning_rate=3e-3 model.units=[16]",
        "train.learning_rate=3e-3 model.units=[32,16]",
    ]
    assert {c.config.train.epochs for c in plan.combinations} == {2}
    assert [c.config.model.units for c in plan.combinations][1] == [32, 16]
    # The value order does not change which sweep it is; a plain override does.
    reordered = plan_sweep("mlp-digits", ["train.epochs=2", "model.units=[32,16],[16]", GRID[0]])
    assert reordered.sweep_hash == plan.sweep_hash
    assert plan_sweep("mlp-digits", ["train.epochs=3", *GRID]).sweep_hash != plan.sweep_hash
    # As in `deeparch run`, the last value of a key wins, whether it is an axis or not.
    later = plan_sweep("mlp-digits", ["train.epochs=1,2", "train.epochs=3", *GRID])
    assert [axis.key for axis in later.axes] == ["train.learning_rate", "model.units"]
    assert {c.config.train.epochs for c in later.combinations} == {3}


def test_random_sample_is_seeded_distinct_and_its_own_sweep():
    first = plan_sweep("mlp-digits", list(GRID), sample=3, seed=7)
    again = plan_sweep("mlp-digits", list(GRID), sample=3, seed=7)
    assert [c.label for c in first.combinations] == [c.label for c in again.combinations]
    assert len({c.label for c in first.combinations}) == 3
    assert first.sweep_hash != plan_sweep("mlp-digits", list(GRID)).sweep_hash
    whole = plan_sweep("mlp-digits", list(GRID), sample=9)
    assert whole.sample is None and len(whole.combinations) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.epochs=3"], "needs at least one axis"),
        (["train.learning_rate=1e-3,0.001"], "same value"),
        (["train.epochs=1,"], "empty"),
        (["name=a,b"], "one"),
    ],
)
def test_plan_rejects_what_is_not_a_sweep(overrides, message):
    with pytest.raises(ConfigError, match=message):
        plan_sweep("mlp-digits", overrides)


# make test's time budget: four pipeline runs. make test checks the one-axis sweep of
# test_compare.py's runs the same way, and plans grids of two axes above.
@pytest.mark.slow
def test_grid_sweep_nests_one_pipeline_run_per_combination_under_one_sweep_run(store, cli):
    status, output, _ = cli("sweep", "-e", "mlp-digits", *TINY, *GRID)
    assert status == 0
    runs = _runs_by_stage(store)
    (sweep,) = runs["sweep"]
    assert sweep.info.run_name == "mlp-digits/sweep" and sweep.info.status == "FINISHED"
    assert sweep.data.tags["sweep_combinations"] == "4"
    pipelines = runs["pipeline"]
    assert len(pipelines) == 4
    expected = {
        "train.learning_rate=1e-3 model.units=[16]": ("0.001", "[16]"),
        "train.learning_rate=1e-3 model.units=[32,16]": ("0.001", "[32, 16]"),
        "train.learning_rate=3e-3 model.units=[16]": ("0.003", "[16]"),
        "train.learning_rate=3e-3 model.units=[32,16]": ("0.003", "[32, 16]"),
    }
    assert {run.data.tags["sweep_overrides"] for run in pipelines} == set(expected)
    for run in pipelines:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == sweep.info.run_id
        assert run.data.tags["sweep_hash"] == sweep.data.tags["sweep_hash"]
        params = mlflow.get_run(run.data.tags["train_run_id"]).data.params
        assert (params["train.learning_rate"], params["model.units"]) == expected[
            run.data.tags["sweep_overrides"]
        ]
        assert run.info.run_id in output
    assert len({run.data.tags["config_hash"] for run in pipelines}) == 4
    assert "accuracy 0." in output and f"deeparch compare --sweep {sweep.info.run_id}" in output


@pytest.mark.slow  # make test's time budget (README, Development)
def test_interrupted_sweep_resumes_with_only_the_unfinished_combinations(store, cli):
    from pipelines import runner

    real_run_pipeline = runner.run_pipeline
    started = []

    def interrupted_at_the_second(config, *args, **kwargs):
        started.append(config)
        if len(started) == 2:
            raise KeyboardInterrupt
        return real_run_pipeline(config, *args, **kwargs)

    sweep = ("sweep", "-e", "mlp-digits", *TINY, "train.learning_rate=1e-3,3e-3")
    with pytest.MonkeyPatch.context() as patch:  # not `monkeypatch`: it also holds the store
        patch.setattr(runner, "run_pipeline", interrupted_at_the_second)
        assert cli(*sweep)[0] == 130
    (killed,) = _runs_by_stage(store)["sweep"]
    assert killed.info.status == "KILLED"
    (first,) = _runs_by_stage(store)["pipeline"]

    status, output, _ = cli(*sweep)
    assert status == 0
    assert f"skipped train.learning_rate=1e-3: finished in run {first.info.run_id}" in output
    runs = _runs_by_stage(store)
    resumed = next(run for run in runs["sweep"] if run.info.run_id != killed.info.run_id)
    assert resumed.data.tags["sweep_hash"] == killed.data.tags["sweep_hash"]
    (second,) = [run for run in runs["pipeline"] if run.info.run_id != first.info.run_id]
    assert second.data.tags["mlflow.parentRunId"] == resumed.info.run_id
    assert second.data.tags["sweep_overrides"] == "train.learning_rate=3e-3"

    # A combination whose run did not finish is run again; the finished one is not.
    mlflow.MlflowClient(store).set_terminated(first.info.run_id, "FAILED")
    status, output, _ = cli(*sweep)
    assert status == 0
    assert f"skipped train.learning_rate=3e-3: finished in run {second.info.run_id}" in output
    pipelines = _runs_by_stage(store)["pipeline"]
    assert len(pipelines) == 3
    (rerun,) = [run for run in pipelines if run.info.run_id not in {first.info.run_id, second.info.run_id}]
    assert rerun.data.tags["config_hash"] == first.data.tags["config_hash"]
    assert rerun.info.status == "FINISHED"


@pytest.mark.slow  # make test's time budget (README, Development)
def test_random_runs_the_sampled_number_of_distinct_combinations(store, cli):
    status, _, _ = cli("sweep", "-e", "mlp-digits", *TINY, *GRID, "--random", "2", "--seed", "1")
    assert status == 0
    runs = _runs_by_stage(store)
    (sweep,) = runs["sweep"]
    assert sweep.data.tags["sweep_combinations"] == "2"
    assert "random 2 of 4, seed 1" in sweep.data.tags["sweep_axes"]
    assert len({run.data.tags["sweep_overrides"] for run in runs["pipeline"]}) == 2


def test_a_bad_value_in_one_combination_exits_2_before_any_run(store, cli):
    status, _, error = cli("sweep", "-e", "mlp-digits", *TINY, "model.dropout=0.1,1.5", GRID[0])
    assert status == 2
    assert "2 of 4 combinations are invalid" in error and "model.dropout: 1.5 is not allowed" in error
    assert all_runs(store) == []


def test_a_combination_that_cannot_read_its_data_exits_2_before_any_run(store, cli):
    status, _, error = cli("sweep", "-e", "mlp-digits", *TINY, "train.gradient_probe_epochs=[],[1]")
    assert status == 2
    assert "train.gradient_probe_epochs=[1]" in error and "no run was started" in error
    assert all_runs(store) == []
