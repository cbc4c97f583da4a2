"""Measure `deeparch tune`: TPE with median pruning against a grid of the same space.

For each seed, a grid study runs every point of a grid (`--space`: on `mlp-mnist1d`, `narrow`, 4 x
2 x 2 points around the shipped settings, or `wide`, 4 x 3 x 2 x 3 points over decades of learning
rate and weight decay, two widths and dropout; on `cnn-mnist1d`, `cnn`, 3 x 3 x 3 points of the
experiment file's own tune.space) for `--epochs` epochs, no pruning; its best validation accuracy
is the target. A TPE study with pruning then runs one trial at a time (the same study, continued)
until a trial reaches that accuracy or it has trained as many epochs as the grid did. Its space
(`--tpe-space`) is the box the grid was laid over (`box`: the same ranges, continuous where the
grid took samples) or the grid's points (`grid`). Compute is counted in trained epochs: a pruned
trial counts the epochs it trained, a trial that re-draws a point already trained to the end
reuses that training and counts none. Issue 15's target, on the mean of 3 seeds: the same or
better accuracy for at most half the grid's epochs. Beside it, the test accuracy (the 1,000 test
examples, never used for a choice) of the trial each search hands over: the grid's best, and TPE's
best among the trials it finished within half the grid's epochs. Runs in a temporary MLflow store
unless MLFLOW_TRACKING_URI names one (then a rerun continues its studies); prints a machine-speed
reference (`reference_seconds`) and a markdown table, and writes JSON with every trial's values.

    .venv/bin/python benchmarks/tune.py                          # 3 seeds, 20 epochs per trial
    .venv/bin/python benchmarks/tune.py --space wide --json benchmarks/results/tune_wide.json
    .venv/bin/python benchmarks/tune.py --seeds 0 --epochs 3     # a quick look
    .venv/bin/python benchmarks/tune.py --render benchmarks/results/tune_cnn.json   # its table again
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import RESULTS_DIR, describe_load, markdown_rows, reference_seconds, render, write_json


@dataclass(frozen=True)
class SearchSpace:
    """A grid and the box it was laid over (the same ranges, continuous where the grid samples)."""

    experiment: str
    description: str
    grid: tuple[str, ...]
    box: tuple[str, ...]

    @property
    def grid_points(self) -> int:
        from pipelines.config import parse_override

        return math.prod(len(parse_override(override)[1]["choices"]) for override in self.grid)


SPACES = {
    # Around the shipped mlp-mnist1d settings, as someone who already knows them would search: every
    # one of the 4 x 2 x 2 = 16 points learns, 5-6 of them within 0.02 of the best.
    "narrow": SearchSpace(
        "mlp-mnist1d",
        "learning rate 1e-3..3e-2, weight decay 0.01..0.1, two widths",
        grid=(
            "tune.space.train.learning_rate={choices: [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}",
            "tune.space.model.units={choices: [[128, 128], [512, 512]]}",
            "tune.space.train.weight_decay={choices: [1.0e-2, 1.0e-1]}",
        ),
        box=(
            "tune.space.train.learning_rate={low: 1.0e-3, high: 3.0e-2, log: true}",
            "tune.space.model.units={choices: [[128, 128], [512, 512]]}",
            "tune.space.train.weight_decay={low: 1.0e-2, high: 1.0e-1, log: true}",
        ),
    ),
    # What a user new to the data searches: decades of learning rate and weight decay, a width and
    # dropout; 4 x 3 x 2 x 3 = 72 grid points, many of which cannot learn in the epochs given.
    "wide": SearchSpace(
        "mlp-mnist1d",
        "learning rate 1e-4..1e-1, weight decay 1e-3..1e-1, two widths, dropout 0..0.5",
        grid=(
            "tune.space.train.learning_rate={choices: [1.0e-4, 1.0e-3, 1.0e-2, 1.0e-1]}",
            "tune.space.train.weight_decay={choices: [1.0e-3, 1.0e-2, 1.0e-1]}",
            "tune.space.model.units={choices: [[128, 128], [512, 512]]}",
            "tune.space.model.dropout={choices: [0.0, 0.25, 0.5]}",
        ),
        box=(
            "tune.space.train.learning_rate={low: 1.0e-4, high: 1.0e-1, log: true}",
            "tune.space.train.weight_decay={low: 1.0e-3, high: 1.0e-1, log: true}",
            "tune.space.model.units={choices: [[128, 128], [512, 512]]}",
            "tune.space.model.dropout={low: 0.0, high: 0.5}",
        ),
    ),
    # The cnn-mnist1d file's own tune.space, what `deeparch tune -e cnn-mnist1d` searches; its
    # grid takes the learning rate's ends and middle: 3 x 3 x 3 = 27 points.
    "cnn": SearchSpace(
        "cnn-mnist1d",
        "the shipped tune.space: learning rate 3e-3..3e-2, three filter widths, dropout 0..0.2",
        grid=(
            "tune.space.train.learning_rate={choices: [3.0e-3, 1.0e-2, 3.0e-2]}",
            "tune.space.model.filters={choices: [[16, 32, 64], [32, 64, 128], [64, 128, 256]]}",
            "tune.space.model.dropout={choices: [0.0, 0.1, 0.2]}",
        ),
        box=(
            "tune.space.train.learning_rate={low: 3.0e-3, high: 3.0e-2, log: true}",
            "tune.space.model.filters={choices: [[16, 32, 64], [32, 64, 128], [64, 128, 256]]}",
            "tune.space.model.dropout={low: 0.0, high: 0.2, step: 0.1}",
        ),
    ),
}

TARGET_EPOCH_SHARE = 0.5
COLUMNS = (
    ("seed", "seed", "{}"),
    ("grid_best", "grid best val_accuracy", "{:.4f}"),
    ("grid_epochs", "grid epochs", "{:.0f}"),
    ("tpe_best", "TPE best val_accuracy", "{:.4f}"),
    ("tpe_epochs", "TPE epochs (to the grid's best, or all)", "{:.0f}"),
    ("epoch_share", "TPE / grid epochs", "{:.2f}"),
    ("tpe_trials", "TPE trials", "{:.0f}"),
    ("tpe_pruned", "pruned", "{:.0f}"),
    ("tpe_distinct", "distinct points", "{:.0f}"),
    ("reached", "reached", "{}"),
    ("grid_choice_test", "test accuracy of the grid's choice", "{:.4f}"),
    ("tpe_half_choice_test", "test accuracy of TPE's choice at half the grid's epochs", "{:.4f}"),
)


@dataclass
class SeedResult:
    """One seed: the grid's best and compute, and TPE's compute to reach it (or all it spent)."""

    seed: int
    grid_best: float
    grid_epochs: int
    tpe_best: float
    tpe_epochs: int
    tpe_trials: int
    tpe_pruned: int
    tpe_distinct: int  # distinct points among its trials
    reached: bool  # the grid's best, within the grid's epochs
    epoch_share: float
    grid_seconds: float
    tpe_seconds: float
    # The test accuracy of the trial each search would hand over (its best validation accuracy
    # among trials trained to the end): the grid's, and TPE's with half the grid's epochs.
    grid_choice_test: float | None = None
    tpe_half_choice_test: float | None = None
    grid_trial_records: list[dict] = field(default_factory=list)  # every trial: params, value, epochs
    tpe_trial_records: list[dict] = field(default_factory=list)  # those counted, in the order they ran


def markdown_table(seeds: list[dict], mean: dict) -> str:
    """The table of a run's seeds and their mean, from the results JSON's `seeds` and `mean` (a
    column an older file lacks shows n/a)."""
    rows = [{**seed, "reached": "yes" if seed["reached"] else "no"} for seed in seeds]
    reached = sum(seed["reached"] for seed in seeds)
    rows.append({"seed": "mean", **mean, "reached": f"{reached} of {len(seeds)}"})
    return markdown_rows(COLUMNS, [{key: row.get(key) for key, _, _ in COLUMNS} for row in rows])


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Space, epochs per trial, seeds, TPE settings, JSON path and overrides passed to every trial."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every trial (train.epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=None,
        help="epochs before the median pruner may stop a trial (default: deeparch tune's, 3/4 of the epochs)",
    )
    parser.add_argument(
        "--startup-trials",
        type=int,
        default=None,
        help="random trials before TPE and pruning (default: deeparch tune's, 5)",
    )
    parser.add_argument(
        "--space", choices=sorted(SPACES), default="narrow", help="the grid and box searched (see SPACES)"
    )
    parser.add_argument(
        "--tpe-space",
        choices=("box", "grid"),
        default="box",
        help="what TPE searches: the box, or the grid points",
    )
    parser.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    parser.add_argument(
        "--max-trials",
        type=int,
        default=100,
        help="stop TPE after this many trials even under the grid's epochs (re-drawn points cost none)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "tune.json", help="where the JSON goes")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="more config overrides")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--render"]:
        render(argv[1:], lambda record: markdown_table(record["seeds"], record["mean"]))
        return 0
    arguments = parse_arguments(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    scratch = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        scratch = tempfile.mkdtemp(prefix="deeparch-bench-tune-")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch}/mlruns/mlflow.db"
    reference = reference_seconds()
    print(f"machine speed reference: {reference:.3f} s per 2048x2048 float32 matmul (load {describe_load()})")
    started = time.perf_counter()
    results = [measure_seed(arguments, seed) for seed in arguments.seeds]
    total_seconds = time.perf_counter() - started
    numeric = ("grid_best", "grid_epochs", "tpe_best", "tpe_epochs", "epoch_share", "tpe_trials")
    numeric += ("tpe_pruned", "tpe_distinct", "grid_choice_test", "tpe_half_choice_test")
    columns = {key: [getattr(result, key) for result in results] for key in numeric}
    mean = {key: None if None in values else sum(values) / len(values) for key, values in columns.items()}
    reached = sum(result.reached for result in results)
    met = reached == len(results) and mean["epoch_share"] <= TARGET_EPOCH_SHARE
    print()
    table = markdown_table([asdict(result) for result in results], mean)
    print(table)
    print()
    print(
        f"TPE ({arguments.tpe_space} space, {arguments.pruner} pruning) reached the grid's best validation "
        f"accuracy in {reached} of {len(results)} seeds within the grid's epochs, with "
        f"{mean['epoch_share']:.2f} of the grid's epochs on average (target: every seed, at most "
        f"{TARGET_EPOCH_SHARE} on average): {'met' if met else 'not met'}; "
        f"{total_seconds / 60:.1f} min in all"
    )
    write_json(
        arguments.json,
        {
            "markdown": table,
            "experiment": SPACES[arguments.space].experiment,
            "epochs_per_trial": arguments.epochs,
            "space": arguments.space,
            "space_description": SPACES[arguments.space].description,
            "grid_space": SPACES[arguments.space].grid,
            "tpe_space": _tpe_space(arguments),
            "tpe_settings": _tpe_settings(arguments),
            "overrides": arguments.overrides,
            "reference_seconds": reference,
            "load_after": describe_load(),
            "total_seconds": total_seconds,
            "seeds": [asdict(result) for result in results],
            "mean": mean,
            "reached": reached,
            "target_epoch_share": TARGET_EPOCH_SHARE,
            "target_met": met,
            "tracking_uri": None if scratch else os.environ["MLFLOW_TRACKING_URI"],
        },
    )
    return 0


def measure_seed(arguments: argparse.Namespace, seed: int) -> SeedResult:
    """The grid study, then the TPE study continued trial by trial until it reaches the grid's
    best or has trained as many epochs as the grid."""

    base = [f"seed={seed}", f"tune.seed={seed}", f"train.epochs={arguments.epochs}", *arguments.overrides]
    started = time.perf_counter()
    # Its total is the grid's size: a finished grid study run again adds no trial.
    space = SPACES[arguments.space]
    grid_settings = [*space.grid, "tune.sampler=grid", "tune.pruner=none", f"tune.trials={space.grid_points}"]
    grid_name = f"bench-grid-{seed}" + ("" if arguments.space == "narrow" else f"-{arguments.space}")
    grid = _study(space.experiment, base, grid_name, grid_settings)
    grid_trials = _finished(grid)
    grid_best = max(trial.value for trial in grid_trials if trial.value is not None)
    grid_epochs = sum(_epochs(trial) for trial in grid_trials)
    grid_seconds = time.perf_counter() - started

    started = time.perf_counter()
    # The space and the sampler's and pruner's settings name the study: others start their own.
    tpe_name = (
        f"bench-tpe-{seed}-{'' if arguments.space == 'narrow' else arguments.space + '-'}"
        f"{arguments.tpe_space}-{arguments.pruner}"
        f"-s{_or_default(arguments.startup_trials)}-w{_or_default(arguments.warmup_epochs)}"
    )
    settings = [*_tpe_space(arguments), *_tpe_settings(arguments)]

    def stop_when_done(study, trial) -> None:
        if _done(_counted(_finished(study), grid_best, grid_epochs), grid_best, grid_epochs):
            study.stop()

    # One study run, one sampler, as `deeparch tune` runs it; stopped after the trial that
    # reaches the grid's best or spends the grid's epochs (a rerun continues it, if not done).
    tpe = _study(
        space.experiment,
        base,
        tpe_name,
        [*settings, f"tune.trials={arguments.max_trials}"],
        callbacks=[stop_when_done],
        done=lambda study: _done(_counted(_finished(study), grid_best, grid_epochs), grid_best, grid_epochs),
    )
    trials = _counted(_finished(tpe), grid_best, grid_epochs)
    if not trials:
        raise RuntimeError(f"study {tpe_name} holds no complete or pruned trial; see the log above")
    tpe_epochs = sum(_epochs(trial) for trial in trials)
    grid_records, tpe_records = _records(grid_trials), _records(trials)
    return SeedResult(
        seed=seed,
        grid_best=grid_best,
        grid_epochs=grid_epochs,
        tpe_best=max(record["value"] for record in tpe_records if record["value"] is not None),
        tpe_epochs=tpe_epochs,
        tpe_trials=len(trials),
        tpe_pruned=sum(trial.state.name == "PRUNED" for trial in trials),
        tpe_distinct=len({json.dumps(trial.params, sort_keys=True) for trial in trials}),
        reached=_reaches(trials[-1], grid_best) and tpe_epochs <= grid_epochs,
        epoch_share=tpe_epochs / grid_epochs,
        grid_seconds=grid_seconds,
        tpe_seconds=time.perf_counter() - started,
        grid_choice_test=_choice_test_accuracy(grid_records),
        tpe_half_choice_test=_choice_test_accuracy(_within(tpe_records, grid_epochs * TARGET_EPOCH_SHARE)),
        grid_trial_records=grid_records,
        tpe_trial_records=tpe_records,
    )


def _tpe_space(arguments: argparse.Namespace) -> tuple[str, ...]:
    """The TPE study's space: the box of `--space`, or its grid's points."""
    space = SPACES[arguments.space]
    return space.box if arguments.tpe_space == "box" else space.grid


def _tpe_settings(arguments: argparse.Namespace) -> list[str]:
    """The TPE study's sampler and pruner overrides."""
    settings = ["tune.sampler=tpe", f"tune.pruner={arguments.pruner}"]
    if arguments.startup_trials is not None:
        settings.append(f"tune.startup_trials={arguments.startup_trials}")
    if arguments.warmup_epochs is not None:
        settings.append(f"tune.warmup_epochs={arguments.warmup_epochs}")
    return settings


def _or_default(value: int | None) -> str:
    """A setting in a study's name: its value, or `d` for deeparch tune's default."""
    return "d" if value is None else str(value)


def _counted(trials: list, target: float, budget: int) -> list:
    """The trials in the order they ran, up to the first that reaches `target` or brings the
    epochs trained to `budget`."""
    ordered = sorted(trials, key=lambda trial: trial.number)
    for index in range(len(ordered)):
        if _done(ordered[: index + 1], target, budget):
            return ordered[: index + 1]
    return ordered


def _done(trials: list, target: float, budget: int) -> bool:
    """Whether the last of `trials` reached `target`, or they trained `budget` epochs."""
    return bool(trials) and (_reaches(trials[-1], target) or sum(_epochs(t) for t in trials) >= budget)


def _reaches(trial, target: float) -> bool:
    """Whether a trial trained to the end with a value at least `target` (a pruned trial has none)."""
    return trial.value is not None and trial.value >= target


def _study(experiment: str, overrides: list[str], name: str, settings: list[str], callbacks=(), done=None):
    """Run (or continue) one study through the same code as `deeparch tune`, unless it exists
    and `done(study)` says it needs no trial more (a benchmark run again); return it."""
    import optuna

    from pipelines import tune

    # An MLflow experiment per study: a TPE trial must not reuse a grid trial's training.
    plan = tune.plan_tune(experiment, [*overrides, *settings, f"tracking.experiment={name}"], name)
    tune.check_against_data(plan)
    try:
        existing = optuna.load_study(study_name=plan.study_name, storage=plan.storage)
    except KeyError:
        existing = None
    if existing is None or done is None or not done(existing):
        tune.run_tune(plan, callbacks=callbacks)
    return optuna.load_study(study_name=plan.study_name, storage=plan.storage)


def _records(trials: list) -> list[dict]:
    """What each trial drew, how it ended, its value (a pruned trial's last reported), its epochs
    and the test accuracy its pipeline run evaluated."""
    import mlflow

    from pipelines import tune

    client = mlflow.MlflowClient()
    records = []
    for trial in sorted(trials, key=lambda trial: trial.number):
        run_id = trial.user_attrs.get("pipeline_run_id")
        metrics = client.get_run(run_id).data.metrics if run_id else {}
        records.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "params": trial.params,
                "value": trial.value if trial.value is not None else tune.last_reported(trial),
                "epochs": _epochs(trial),
                "test_accuracy": metrics.get("test_accuracy"),
            }
        )
    return records


def _within(records: list[dict], epochs: float) -> list[dict]:
    """The first records, in the order they ran, whose epochs add up to at most `epochs`."""
    spent, kept = 0, []
    for record in records:
        spent += record["epochs"]
        if spent > epochs:
            break
        kept.append(record)
    return kept


def _choice_test_accuracy(records: list[dict]) -> float | None:
    """The test accuracy of the complete trial with the best value (the earliest among equals)."""
    complete = [record for record in records if record["state"] == "COMPLETE"]
    if not complete:
        return None
    return max(complete, key=lambda record: (record["value"], -record["number"]))["test_accuracy"]


def _finished(study) -> list:
    return [trial for trial in study.trials if trial.state.name in ("COMPLETE", "PRUNED")]


def _epochs(trial) -> int:
    """Epochs a trial trained: the epochs it reported (its metric at each epoch end)."""
    return len(trial.intermediate_values)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
