"""Measure `deeparch tune`: TPE with median pruning against a grid of the same space.

On `mlp-mnist1d` (or another experiment, `--experiment`), for each seed: a grid study runs every
combination of a discrete space for `--epochs` epochs (no pruning); its best validation accuracy
is the target. A TPE study with median pruning over the same space then runs one trial at a
time (the same study, continued) until a trial reaches that accuracy or it has run as many
trials as the grid. Compute is counted in trained epochs (a pruned trial counts the epochs it
trained). Issue 15's target, on the mean of 3 seeds: the same or better accuracy for at most
half the grid's epochs. Runs in a temporary MLflow store unless MLFLOW_TRACKING_URI names one;
prints a machine-speed reference (`reference_seconds`) and a markdown table, and writes JSON.

    .venv/bin/python benchmarks/tune.py                          # 3 seeds, 20 epochs per trial
    .venv/bin/python benchmarks/tune.py --seeds 0 --epochs 3     # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import RESULTS_DIR, describe_load, markdown_rows, reference_seconds, write_json

# A discrete space, so that the grid is exactly the space TPE searches: 4 x 2 x 2 = 16 points.
SPACE = [
    "tune.space.train.learning_rate={choices: [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}",
    "tune.space.model.units={choices: [[128, 128], [512, 512]]}",
    "tune.space.train.weight_decay={choices: [1.0e-2, 1.0e-1]}",
]
GRID_POINTS = 16
TARGET_EPOCH_SHARE = 0.5
COLUMNS = (
    ("seed", "seed", "{}"),
    ("grid_best", "grid best val_accuracy", "{:.4f}"),
    ("grid_epochs", "grid epochs", "{}"),
    ("tpe_best", "TPE best val_accuracy", "{:.4f}"),
    ("tpe_epochs", "TPE epochs to reach the grid's best", "{}"),
    ("tpe_trials", "TPE trials", "{}"),
    ("tpe_pruned", "pruned", "{}"),
    ("epoch_share", "TPE / grid epochs", "{:.2f}"),
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
    reached: bool
    epoch_share: float
    grid_seconds: float
    tpe_seconds: float


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Experiment, epochs per trial, seeds, JSON path and overrides passed to every trial."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="mlp-mnist1d", help="a shipped MNIST-1D experiment")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every trial (train.epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--warmup-epochs", type=int, default=3, help="epochs before the median pruner may stop a trial"
    )
    parser.add_argument("--startup-trials", type=int, default=3, help="random trials before TPE and pruning")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "tune.json", help="where the JSON goes")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="more config overrides")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
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
    mean = {
        key: sum(getattr(result, key) for result in results) / len(results)
        for key in (
            "grid_best",
            "grid_epochs",
            "tpe_best",
            "tpe_epochs",
            "tpe_trials",
            "tpe_pruned",
            "epoch_share",
        )
    }
    reached = all(result.reached for result in results)
    met = reached and mean["epoch_share"] <= TARGET_EPOCH_SHARE
    print()
    print(markdown_rows(COLUMNS, [asdict(result) for result in results] + [{"seed": "mean", **mean}]))
    print()
    print(
        f"TPE + median pruning reached the grid's best validation accuracy in "
        f"{sum(r.reached for r in results)} of {len(results)} seeds, with {mean['epoch_share']:.2f} of the "
        f"grid's epochs on average (target: every seed, at most {TARGET_EPOCH_SHARE}): "
        f"{'met' if met else 'not met'}; {total_seconds / 60:.1f} min in all"
    )
    write_json(
        arguments.json,
        {
            "experiment": arguments.experiment,
            "epochs_per_trial": arguments.epochs,
            "space": SPACE,
            "overrides": arguments.overrides,
            "reference_seconds": reference,
            "load_after": describe_load(),
            "total_seconds": total_seconds,
            "seeds": [asdict(result) for result in results],
            "mean": mean,
            "target_epoch_share": TARGET_EPOCH_SHARE,
            "target_met": met,
            "tracking_uri": None if scratch else os.environ["MLFLOW_TRACKING_URI"],
        },
    )
    return 0


def measure_seed(arguments: argparse.Namespace, seed: int) -> SeedResult:
    """The grid study, then the TPE study continued trial by trial until it reaches the grid."""
    from pipelines import tune

    base = [
        f"seed={seed}",
        f"tune.seed={seed}",
        f"train.epochs={arguments.epochs}",
        *arguments.overrides,
        *SPACE,
    ]
    started = time.perf_counter()
    # Its total is the grid's size: a finished grid study run again adds no trial.
    grid_settings = ["tune.sampler=grid", "tune.pruner=none", f"tune.trials={GRID_POINTS}"]
    grid = _study(arguments.experiment, base, f"bench-grid-{seed}", grid_settings)
    grid_trials = _finished(grid)
    grid_best = max(trial.value for trial in grid_trials if trial.value is not None)
    grid_epochs = sum(_epochs(trial) for trial in grid_trials)
    grid_seconds = time.perf_counter() - started

    started = time.perf_counter()
    tpe_settings = [
        "tune.sampler=tpe",
        "tune.pruner=median",
        f"tune.startup_trials={arguments.startup_trials}",
        f"tune.warmup_epochs={arguments.warmup_epochs}",
    ]
    # The pruner's settings name the study, so that other settings start a study of their own.
    tpe_name = f"bench-tpe-{seed}-s{arguments.startup_trials}-w{arguments.warmup_epochs}"
    tpe_epochs, reached, tpe = 0, False, None
    for count in range(1, len(grid_trials) + 1):
        tpe = _study(arguments.experiment, base, tpe_name, [*tpe_settings, f"tune.trials={count}"])
        trials = _finished(tpe)
        tpe_epochs = sum(_epochs(trial) for trial in trials)
        if any(trial.value is not None and trial.value >= grid_best for trial in trials):
            reached = True
            break
    trials = _finished(tpe)
    values = [trial.value if trial.value is not None else tune.last_reported(trial) for trial in trials]
    return SeedResult(
        seed=seed,
        grid_best=grid_best,
        grid_epochs=grid_epochs,
        tpe_best=max(value for value in values if value is not None),
        tpe_epochs=tpe_epochs,
        tpe_trials=len(trials),
        tpe_pruned=sum(trial.state.name == "PRUNED" for trial in trials),
        reached=reached,
        epoch_share=tpe_epochs / grid_epochs,
        grid_seconds=grid_seconds,
        tpe_seconds=time.perf_counter() - started,
    )


def _study(experiment: str, overrides: list[str], name: str, settings: list[str]):
    """Run (or continue) one study through the same code as `deeparch tune`; return it."""
    from pipelines import tune

    # An MLflow experiment per study: a TPE trial must not reuse a grid trial's training.
    plan = tune.plan_tune(experiment, [*overrides, *settings, f"tracking.experiment={name}"], name)
    tune.check_against_data(plan)
    tune.run_tune(plan)
    import optuna

    return optuna.load_study(study_name=plan.study_name, storage=plan.storage)


def _finished(study) -> list:
    return [trial for trial in study.trials if trial.state.name in ("COMPLETE", "PRUNED")]


def _epochs(trial) -> int:
    """Epochs a trial trained: the epochs it reported (its metric at each epoch end)."""
    return len(trial.intermediate_values)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
