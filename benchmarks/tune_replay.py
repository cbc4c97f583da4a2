"""Replay grid studies' learning curves through TPE with median pruning, without training.

A grid study run with `--pruner none` (as `benchmarks/tune.py` runs its grids, or `deeparch tune
--sampler grid --pruner none`) trains every point to the end and Optuna stores the validation
metric of each epoch. Since a point trains the same way every time (same config and seed, same
metrics on a CPU), a TPE study over the grid's points can be replayed from those curves: each
trial draws a point, reports its recorded curve epoch by epoch to Optuna's `MedianPruner`, and
stops where the pruner says. Compute is counted as in `benchmarks/tune.py`: the epochs a trial
reported, none for a point drawn again after it trained to the end (`deeparch tune` reuses that
training). A study stops at the first trial that ends at the grid's best value, or when it has
spent the grid's epochs. What this measures that the real benchmark cannot in the same time: how
often a pruner setting finds the grid's best, over many sampler seeds, on several datasets.

    .venv/bin/python benchmarks/tune_replay.py --storage /tmp/tunebench-cnn/mlruns/optuna.db \\
        --studies bench-grid-0-cnn bench-grid-1-cnn bench-grid-2-cnn --sampler-seeds 20
    .venv/bin/python benchmarks/tune_replay.py --render benchmarks/results/tune_replay_cnn.json  # its table

Limits: TPE searches the grid's points here, not the box around them; a point's curve is the
one recorded, so the replay holds only where training is deterministic.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

from common import RESULTS_DIR, describe_load, markdown_rows, reference_seconds, render, write_json

NO_PRUNING = "none"


@dataclass(frozen=True)
class GridCurves:
    """One grid study: each point's final value and its curve (the metric at epochs 1, 2, ...)."""

    name: str
    direction: str
    points: dict[tuple, tuple[float, tuple[float, ...]]]

    @property
    def epochs(self) -> int:
        return max(len(curve) for _, curve in self.points.values())

    @property
    def choices(self) -> dict[str, list]:
        """Each param's values, in the order of the sorted points (TPE's draws depend on it)."""
        choices: dict[str, list] = {}
        for key in sorted(self.points):
            for name, value in key:
                if value not in choices.setdefault(name, []):
                    choices[name].append(value)
        return choices

    @property
    def best(self) -> float:
        values = [value for value, _ in self.points.values()]
        return max(values) if self.direction == "maximize" else min(values)


@dataclass(frozen=True)
class Setting:
    """TPE's and the median pruner's start-up trials, and the pruner's warm-up as a share of the
    epochs (or no pruning)."""

    startup_trials: int
    warmup: float | str  # a share of the epochs, or NO_PRUNING

    def warmup_epochs(self, epochs: int) -> int | None:
        return None if self.warmup == NO_PRUNING else max(1, math.ceil(float(self.warmup) * epochs))

    @property
    def label(self) -> str:
        warmup = "no pruning" if self.warmup == NO_PRUNING else f"warm-up {float(self.warmup):.0%}"
        return f"startup {self.startup_trials}, {warmup}"


def load_grid(storage: str, name: str) -> GridCurves:
    """A finished grid study's points and curves (trials that did not finish are left out)."""
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    points = {}
    for trial in study.trials:
        if trial.state.name != "COMPLETE" or not trial.intermediate_values:
            continue
        key = tuple(sorted(trial.params.items()))
        curve = tuple(trial.intermediate_values[step] for step in sorted(trial.intermediate_values))
        points[key] = (trial.value, curve)
    if not points:
        raise SystemExit(f"study {name!r} in {storage} has no complete trial with recorded epochs")
    grid = GridCurves(name, study.direction.name.lower(), points)
    size = math.prod(len(values) for values in grid.choices.values())
    if len(points) < size:
        raise SystemExit(
            f"study {name!r} holds {len(points)} complete points of its grid's {size}: a TPE trial "
            "could draw one without a curve; finish the grid study first (run it again)"
        )
    return grid


def replay(grid: GridCurves, setting: Setting, sampler_seed: int) -> dict:
    """One TPE study over the grid's points, replayed from their curves, with the sampler and
    pruner `deeparch tune` builds."""
    import optuna

    from pipelines.tune import median_pruner, tpe_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    choices = grid.choices
    warmup = setting.warmup_epochs(grid.epochs)
    study = optuna.create_study(
        direction=grid.direction,
        sampler=tpe_sampler(setting.startup_trials, sampler_seed),
        pruner=optuna.pruners.NopPruner()
        if warmup is None
        else median_pruner(setting.startup_trials, warmup),
    )
    budget = grid.epochs * len(grid.points)
    spent, trials, trained = 0, 0, set()
    reaches = (
        (lambda value: value >= grid.best) if grid.direction == "maximize" else (lambda v: v <= grid.best)
    )
    while spent < budget:
        trial = study.ask()
        key = tuple(sorted((name, trial.suggest_categorical(name, choices[name])) for name in choices))
        trials += 1
        value, curve = grid.points[key]
        if key in trained:  # trained to the end before: reused, no epoch spent
            study.tell(trial, value)
            continue
        for step, reported in enumerate(curve, 1):
            trial.report(reported, step)
            spent += 1
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, value)
            trained.add(key)
            if reaches(value):
                return {"reached": True, "share": spent / budget, "trials": trials}
    return {"reached": False, "share": min(spent, budget) / budget, "trials": trials}


COLUMNS = (
    ("setting", "setting", "{}"),
    ("reached", "studies reaching the grid's best", "{:.2f}"),
    ("share", "mean share of the grid's epochs", "{:.2f}"),
    ("worst_grid_share", "worst grid's mean share", "{:.2f}"),
    ("trials", "trials", "{:.0f}"),
)


def markdown_table(rows: list[dict]) -> str:
    """One row per pruner setting: how often the studies reached the grid's best, at what compute."""
    return markdown_rows(COLUMNS, rows)


def _task(arguments: tuple[GridCurves, Setting, int]) -> tuple[str, Setting, dict]:
    grid, setting, seed = arguments
    return grid.name, setting, replay(grid, setting, seed)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--storage", required=True, help="the Optuna sqlite file (or URL) of the grid studies"
    )
    parser.add_argument("--studies", nargs="+", required=True, help="grid study names, e.g. one per seed")
    parser.add_argument("--sampler-seeds", type=int, default=20, help="TPE seeds replayed per study")
    parser.add_argument("--startup-trials", type=int, nargs="+", default=[5])
    parser.add_argument(
        "--warmups",
        nargs="+",
        default=["0.1", "0.25", "0.5", "0.75", NO_PRUNING],
        help="the median pruner's warm-up as a share of the epochs, or 'none' (no pruning)",
    )
    parser.add_argument("--label", default="", help="what the grids are, for the table and JSON")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "tune_replay.json")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--render"]:  # the table of older results files: --render FILE...
        render(argv[1:], lambda record: markdown_table(record["rows"]))
        return 0
    arguments = parse_arguments(argv)
    storage = (
        arguments.storage if "://" in arguments.storage else f"sqlite:///{Path(arguments.storage).resolve()}"
    )
    reference = reference_seconds()
    print(f"machine speed reference: {reference:.3f} s per 2048x2048 float32 matmul (load {describe_load()})")
    grids = [load_grid(storage, name) for name in arguments.studies]
    settings = [
        Setting(startup, warmup if warmup == NO_PRUNING else float(warmup))
        for startup in arguments.startup_trials
        for warmup in arguments.warmups
    ]
    tasks = [
        (grid, setting, seed)
        for setting in settings
        for grid in grids
        for seed in range(arguments.sampler_seeds)
    ]
    started = time.perf_counter()
    with Pool() as pool:
        outcomes = pool.map(_task, tasks, chunksize=1)
    rows = []
    for setting in settings:
        mine = [(name, outcome) for name, s, outcome in outcomes if s == setting]
        per_grid = {
            grid.name: statistics.mean(o["share"] for name, o in mine if name == grid.name) for grid in grids
        }
        rows.append(
            {
                "setting": setting.label,
                "startup_trials": setting.startup_trials,
                "warmup": setting.warmup,
                "reached": statistics.mean(o["reached"] for _, o in mine),
                "share": statistics.mean(o["share"] for _, o in mine),
                "worst_grid_share": max(per_grid.values()),
                "trials": statistics.mean(o["trials"] for _, o in mine),
                "per_grid_share": per_grid,
            }
        )
    print()
    print(
        f"{arguments.label or ', '.join(arguments.studies)}: {len(grids)} grids of "
        f"{', '.join(str(len(g.points)) for g in grids)} points, {grids[0].epochs} epochs each, "
        f"{arguments.sampler_seeds} TPE seeds per grid"
    )
    table = markdown_table(rows)
    print(table)
    print(f"{(time.perf_counter() - started) / 60:.1f} min")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "label": arguments.label,
            "storage": storage,
            "studies": arguments.studies,
            "grid_points": [len(grid.points) for grid in grids],
            "epochs": [grid.epochs for grid in grids],
            "grid_best": [grid.best for grid in grids],
            "sampler_seeds": arguments.sampler_seeds,
            "reference_seconds": reference,
            "load_after": describe_load(),
            "settings": [asdict(setting) for setting in settings],
            "rows": rows,
            # The replayed curves themselves: every grid point's params, final value and metric
            # at each epoch, so the table can be checked without the study database.
            "grids": {
                grid.name: [
                    {"params": dict(key), "value": value, "curve": list(curve)}
                    for key, (value, curve) in sorted(grid.points.items())
                ]
                for grid in grids
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
