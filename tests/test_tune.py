"""`deeparch tune`: an Optuna study of pipeline runs nested under one tune run, shared by workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest

from pipelines.config import ConfigError, load_experiment
from pipelines.tune import plan_tune

from .conftest import TINY, all_runs
from .test_server import postgres_uri  # noqa: F401 - the throwaway PostgreSQL the server tests start

DEEPARCH = [sys.executable, "-m", "pipelines.cli"]
TINY_TUNE = [
    *TINY,
    "model.units=[16]",
    "tune.startup_trials=1",
    "tune.heartbeat_seconds=1",
    "tune.space.train.learning_rate={low: 1.0e-3, high: 3.0e-2, log: true}",
    "tune.space.model.dropout={choices: [0.0, 0.2]}",
    "tune.space.model.units=null",
]


def _runs_by_stage(uri: str) -> dict[str, list]:
    runs: dict[str, list] = {}
    for run in all_runs(uri):
        runs.setdefault(run.data.tags.get("stage"), []).append(run)
    return runs


def _study(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _worker(tmp_path: Path, *extra: str) -> subprocess.Popen:
    """`deeparch tune` as a process of its own in tmp_path (same store, same study)."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    log = (tmp_path / f"worker-{time.monotonic_ns()}.log").open("w")
    return subprocess.Popen(
        [*DEEPARCH, "tune", "-e", "mlp-digits", *TINY_TUNE, *extra],
        cwd=tmp_path,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _logs(tmp_path: Path) -> str:
    return "\n".join(path.read_text()[-3000:] for path in sorted(tmp_path.glob("worker-*.log")))


# --- the space, validated before anything runs ---------------------------------------------------


def test_space_reads_dotted_keys_from_files_and_nested_overrides():
    config = load_experiment(
        "mlp-digits",
        [
            "tune.space.train.learning_rate={low: 1.0e-4, high: 1.0e-2, log: true}",
            "tune.space.train.epochs={low: 2, high: 8, step: 2}",
            "tune.space.model.units=null",  # drops a key the experiment file searches
        ],
    )
    space = config.tune.space
    assert "model.units" not in space
    assert space["train.learning_rate"].log and not space["train.learning_rate"].integer
    assert space["train.epochs"].integer and space["train.epochs"].grid() == [2, 4, 6, 8]
    # How to search is not part of what a run is.
    assert config.section_hash() == load_experiment("mlp-digits", ["tune.trials=3"]).section_hash()
    assert not any(key.startswith("tune.") for key in config.flat_params())


def test_every_shipped_classification_experiment_has_a_space_whose_bounds_are_valid():
    for name in (
        "mlp-digits",
        "cnn-digits",
        "rnn-digits",
        "lstm-digits",
        "mlp-mnist1d",
        "cnn-mnist1d",
        "lstm-text",
        "cnn-text",
    ):
        plan = plan_tune(name, [])
        assert plan.space, name
        assert len(plan.bound_configs) > len(plan.space)


def test_median_pruning_waits_three_quarters_of_the_epochs_unless_told():
    # Under a decaying learning rate the trials that end best are often behind early on
    # (benchmarks/tune_replay.py): the warm-up is 3/4 of the epochs, or of the most a trial trains.
    assert plan_tune("cnn-mnist1d", ["train.epochs=20"]).warmup_epochs == 15
    assert plan_tune("cnn-mnist1d", ["train.epochs=7"]).warmup_epochs == 6
    searched = plan_tune("mlp-digits", ["tune.space.train.epochs={low: 10, high: 30, step: 10}"])
    assert searched.warmup_epochs == 23
    assert plan_tune("cnn-mnist1d", ["train.epochs=20", "tune.warmup_epochs=3"]).warmup_epochs == 3
    assert plan_tune("cnn-mnist1d", ["tune.warmup_epochs=0"]).warmup_epochs == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tune.space.train.learnin_rate={low: 1.0e-3, high: 1.0e-2}", "train.learnin_rate: unknown key"),
        ("tune.space.train.learning_rate={low: 1.0e-1, high: 1.0e-3}", "low 0.1 > high 0.001"),
        ("tune.space.model.dropout={choices: [0.1, 1.5]}", "model.dropout: 1.5 is not allowed"),
        ("tune.space.name={choices: [a, b]}", "key 'name' cannot be searched"),
        ("tune.space.train.learning_rate={low: 0, high: 1.0e-2, log: true}", "log needs low > 0"),
    ],
)
def test_bad_space_is_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        plan_tune("mlp-digits", [override])


def test_bad_space_exits_2_before_any_run(store, cli, tmp_path):
    status, _, error = cli(
        "tune", "-e", "mlp-digits", *TINY, "tune.space.model.dropout={choices: [0.1, 1.5]}"
    )
    assert status == 2
    assert "tune.space.model.dropout: 1.5 is refused" in error and "no trial was started" in error
    assert all_runs(store) == []
    assert not (tmp_path / "mlruns" / "optuna.db").exists()
    status, _, error = cli("tune", "-e", "mlp-digits", *TINY, "--sampler", "grid")
    assert status == 2 and "--sampler grid needs a step" in error


# --- one worker, in process ---------------------------------------------------------------------


def test_trials_nest_under_one_tune_run_that_logs_the_best_config_which_run_reproduces(store, cli, tmp_path):
    status, output, _ = cli("tune", "-e", "mlp-digits", *TINY_TUNE, "--trials", "2")
    assert status == 0, output
    runs = _runs_by_stage(store)
    (tune,) = runs["tune"]
    assert tune.info.run_name == "mlp-digits/tune" and tune.info.status == "FINISHED"
    assert tune.data.tags["tune_metric"] == "val_accuracy"
    assert tune.data.tags["tune_warmup_epochs"] == "1" and "median pruning from epoch 1)" in output
    trials = runs["pipeline"]
    assert sorted(run.data.tags["trial"] for run in trials) == ["0", "1"]
    assert all(run.info.run_name == f"mlp-digits · trial {run.data.tags['trial']}" for run in trials)
    assert all(run.data.tags["mlflow.parentRunId"] == tune.info.run_id for run in trials)
    assert all(run.data.tags["trial_state"] in ("COMPLETE", "PRUNED") for run in trials)
    assert len(runs["prepare"]) == 1  # prepared once, reused by every trial
    assert "export" not in runs  # trials stop after evaluate; `deeparch run` of the best exports it
    study = _study(tmp_path)
    assert len(study.trials) == 2
    assert tune.data.metrics["best_val_accuracy"] == pytest.approx(study.best_value)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(tune.info.run_id, "optuna")}
    assert {f"optuna/{name}.png" for name in ("optimization_history", "parallel_coordinate")} <= artifacts

    best = mlflow.artifacts.download_artifacts(
        run_id=tune.info.run_id, artifact_path="best.yaml", dst_path=str(tmp_path / "best")
    )
    best_run = next(run for run in trials if run.data.tags["trial"] == tune.data.tags["best_trial"])
    status, output, _ = cli("run", "-e", best)
    assert status == 0
    (reproduced,) = [run for run in _runs_by_stage(store)["pipeline"] if "trial" not in run.data.tags]
    assert reproduced.data.tags["config_hash"] == best_run.data.tags["config_hash"]
    assert reproduced.data.tags["train_run_id"] == best_run.data.tags["train_run_id"]  # same training

    status, output, _ = cli("compare", "--tune", tune.info.run_id)
    assert status == 0
    lines = output.splitlines()
    assert lines[0].split()[:3] == ["run", "trial", "trial_state"]
    # Best first: the first row is the best trial or one that tied with it (tiny data ties often).
    first = mlflow.get_run(lines[2].split()[0])
    assert study.trials[int(first.data.tags["trial"])].value == study.best_value


@pytest.mark.slow  # make test's time budget: make test keeps the in-process study above
def test_pruning_stops_a_trial_whose_learning_rate_cannot_learn(store, cli, tmp_path):
    grid_study = [
        "tune",
        "-e",
        "mlp-digits",
        *TINY,
        "train.epochs=4",
        "model.units=[32]",
        "train.schedule=constant",
        "train.warmup_fraction=0",
        "tune.warmup_epochs=1",
        "tune.startup_trials=1",
        "tune.space={train.learning_rate: {choices: [3.0e-2, 1.0e-7]}}",
        "tune.seed=1",  # the grid's order: the rate that learns first, then the one that cannot
        "--sampler",
        "grid",
    ]
    status, output, _ = cli(*grid_study)  # tune.trials is 20: the grid's 2 points are the study's total
    assert status == 0, output
    assert "2 trials (grid" in output and "[2/2] mlp-digits trial 1" in output and "/20]" not in output
    trials = {run.data.tags["trial"]: run for run in _runs_by_stage(store)["pipeline"]}
    pruned = [run for run in trials.values() if run.data.tags.get("pruned") == "true"]
    assert len(pruned) == 1, output
    (slow,) = pruned
    assert slow.info.status == "FINISHED" and slow.data.tags["trial_state"] == "PRUNED"
    train = mlflow.get_run(slow.data.tags["train_run_id"])
    assert train.data.params["train.learning_rate"] == "1e-07"
    assert (
        int(slow.data.tags["pruned_epoch"]) < 4
        and train.data.tags["stopped_epoch"] == slow.data.tags["pruned_epoch"]
    )
    assert "fingerprint" not in train.data.tags  # a pruned training is never reused as the config's result
    states = sorted(trial.state.name for trial in _study(tmp_path).trials)
    assert states == ["COMPLETE", "PRUNED"]
    status, output, _ = cli(*grid_study)  # run again: the grid is done, no point runs twice
    assert status == 0 and "already holds its 2 trials" in output, output
    assert len(_study(tmp_path).trials) == 2


# --- several workers, one storage ----------------------------------------------------------------


# Worker processes cost a minute of CPU: these tests (two workers on sqlite and on PostgreSQL, a
# SIGKILLed worker restarted) run in `make test-slow`; `make test` tunes in process.
@pytest.mark.slow
def test_two_workers_share_one_study_and_complete_exactly_its_trials(store, tmp_path):
    workers = [_worker(tmp_path, "--trials", "4") for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, _logs(tmp_path)
    study = _study(tmp_path)
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 4, _logs(tmp_path)
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    runs = _runs_by_stage(store)
    (tune,) = runs["tune"]  # both workers log under one tune run
    trial_numbers = [run.data.tags["trial"] for run in runs["pipeline"]]
    assert len(trial_numbers) == len(set(trial_numbers)) == 4  # no trial ran twice
    assert {str(t.number) for t in done} == set(trial_numbers)
    assert all(run.data.tags["mlflow.parentRunId"] == tune.info.run_id for run in runs["pipeline"])


@pytest.mark.slow  # make test's time budget (README, Development)
def test_worker_killed_mid_trial_is_retried_and_the_study_still_reaches_its_trials(store, tmp_path):
    storage = tmp_path / "mlruns" / "optuna.db"
    worker = _worker(tmp_path, "--trials", "2")
    deadline = time.monotonic() + 300
    while not _running_train(store):  # kill it while a trial trains
        assert worker.poll() is None and time.monotonic() < deadline, _logs(tmp_path)
        time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert storage.exists()

    restarted = _worker(tmp_path, "--trials", "2")
    assert restarted.wait(timeout=600) == 0, _logs(tmp_path)
    study = _study(tmp_path)
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states
    assert sum(state in ("COMPLETE", "PRUNED") for state in states) == 2, states
    (killed,) = [t for t in study.trials if t.state.name == "FAIL"]
    assert any(t.system_attrs.get("failed_trial") == killed.number for t in study.trials)  # retried
    runs = all_runs(store)
    assert not [run for run in runs if run.info.status == "RUNNING"]  # the dead worker's runs are KILLED
    dead = [run for run in runs if run.data.tags.get("trial") == str(killed.number)]
    assert dead and all(run.info.status == "KILLED" for run in dead)


def _running_train(uri: str) -> bool:
    return any(
        run.data.tags.get("stage") == "train" and run.info.status == "RUNNING" for run in all_runs(uri)
    )


@pytest.mark.slow
def test_two_workers_share_a_study_in_postgresql(store, tmp_path, postgres_uri):  # noqa: F811
    workers = [_worker(tmp_path, "--trials", "4", "--storage", postgres_uri) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=900) == 0, _logs(tmp_path)
    (summary,) = optuna.get_all_study_summaries(postgres_uri)
    study = optuna.load_study(study_name=summary.study_name, storage=postgres_uri)
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 4
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    runs = _runs_by_stage(store)
    (tune,) = runs["tune"]  # both workers log under one tune run
    trial_numbers = [run.data.tags["trial"] for run in runs["pipeline"]]
    assert len(trial_numbers) == len(set(trial_numbers)) == 4
    assert all(run.data.tags["mlflow.parentRunId"] == tune.info.run_id for run in runs["pipeline"])
    assert not (tmp_path / "mlruns" / "optuna.db").exists()
