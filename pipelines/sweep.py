"""Sweeps: one pipeline run per combination of overrides, nested under one `sweep` run, resumable.

An override whose value holds top-level commas (`train.learning_rate=1e-3,3e-3`,
`model.units=[32],[64,64]`) is an axis; the grid is the product of the axes, and overrides
without commas apply to every combination. Every combination is validated before any run starts.
A combination whose config already has a FINISHED pipeline run in its MLflow experiment (same
`config_hash` tag) is skipped, so a sweep started again after an interruption runs only what is
missing. Nothing here imports TensorFlow until a sweep actually runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mlflow
from mlflow.entities import RunTag

from pipelines import tracking
from pipelines.config import ConfigError, ExperimentConfig, load_experiment, parse_override
from pipelines.progress import Progress

if TYPE_CHECKING:
    from mlflow.entities import Run

SWEEP_STAGE = "sweep"
SWEEP_HASH_TAG = "sweep_hash"
SWEEP_OVERRIDES_TAG = "sweep_overrides"
# A run can belong to several sweeps (a finished run another sweep reuses): one tag per sweep.
MEMBER_TAG_PREFIX = "sweep."
_BRACKETS = {"[": "]", "{": "}", "(": ")"}
_MAX_LISTED_PROBLEMS = 10


class SweepIncompleteError(RuntimeError):
    """Some combinations of a sweep failed; the sweep run is marked FAILED with this reason."""


@dataclass(frozen=True)
class Axis:
    """One swept key and its values, as the user wrote them."""

    key: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.key}={','.join(self.values)}"


@dataclass(frozen=True)
class Combination:
    """One point of the grid: the axis overrides that select it and the resolved config."""

    overrides: tuple[str, ...]
    config: ExperimentConfig

    @property
    def label(self) -> str:
        """The combination's overrides as one line, e.g. `train.learning_rate=1e-3 model.units=[32]`."""
        return " ".join(self.overrides)


@dataclass
class SweepPlan:
    """What a sweep will run: validated combinations, in grid order, and the sweep's identity."""

    experiment: str
    axes: tuple[Axis, ...]
    fixed: tuple[str, ...]
    combinations: list[Combination]
    grid_size: int
    sample: int | None
    seed: int
    sweep_hash: str

    def describe(self) -> str:
        """The axes and the sampling, for tags and messages."""
        axes = " ".join(str(axis) for axis in self.axes)
        if self.sample is None:
            return axes
        return f"{axes} (random {self.sample} of {self.grid_size}, seed {self.seed})"


@dataclass
class SweepOutcome:
    """What happened to one combination: ran, skipped (finished earlier) or failed."""

    combination: Combination
    status: str
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


@dataclass
class SweepResult:
    """The sweep run and each combination's outcome, in grid order."""

    run_id: str
    plan: SweepPlan
    outcomes: list[SweepOutcome]

    @property
    def failed(self) -> list[SweepOutcome]:
        """The combinations whose pipeline raised."""
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]


def member_tag(sweep_hash: str) -> str:
    """The tag a pipeline run carries for each sweep it belongs to (value: its overrides)."""
    return f"{MEMBER_TAG_PREFIX}{sweep_hash}"


def split_values(text: str) -> list[str]:
    """Split an override's value on its top-level commas: `[32],[64,64]` -> `[32]`, `[64,64]`."""
    values, depth, quote, current = [], [], None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _BRACKETS:
            depth.append(_BRACKETS[char])
        elif depth and char == depth[-1]:
            depth.pop()
        elif char == "," and not depth:
            values.append("".join(current))
            current = []
            continue
        current.append(char)
    values.append("".join(current))
    return [value.strip() for value in values]


def plan_sweep(experiment: str, overrides: list[str], sample: int | None = None, seed: int = 0) -> SweepPlan:
    """Parse the axes, build the grid (or a seeded sample of it) and validate every combination."""
    axes, fixed, ordered = _axes_and_fixed(overrides)
    if not axes:
        raise ConfigError(
            "a sweep needs at least one axis, an override with comma-separated values such as "
            "train.learning_rate=1e-3,3e-3 or model.units=[32],[64,64]; for one run use `deeparch run`"
        )
    grid = list(itertools.product(*(axis.values for axis in axes)))
    grid_size = len(grid)
    if sample is not None:
        if sample < 1:
            raise ConfigError(f"--random {sample} is not allowed; give a number of combinations >= 1")
        if sample >= grid_size:
            sample = None  # the whole grid: the same sweep as without --random
        else:
            grid = _sampled(grid, axes, sample, seed)
    return SweepPlan(
        experiment=experiment,
        axes=tuple(axes),
        fixed=tuple(fixed),
        combinations=_validated(experiment, axes, ordered, grid),
        grid_size=grid_size,
        sample=sample,
        seed=seed,
        sweep_hash=_sweep_hash(experiment, axes, fixed, sample, seed),
    )


def run_sweep(plan: SweepPlan) -> SweepResult:
    """Run every combination not yet finished as a pipeline run nested under one `sweep` run.

    A combination that raises is reported and the others still run; the sweep run is then marked
    FAILED. Ctrl-C stops the sweep (its runs are marked KILLED); starting it again resumes it.
    """
    _check_against_data(plan)  # before any run starts, like the configs
    first = plan.combinations[0].config
    tracking.configure(first)
    tags = {
        SWEEP_HASH_TAG: plan.sweep_hash,
        "sweep_axes": plan.describe()[:5000],
        "sweep_combinations": str(len(plan.combinations)),
    }
    outcomes: list[SweepOutcome] = []
    try:
        with tracking.stage_run(first, SWEEP_STAGE, tags) as sweep_run:
            mlflow.log_dict(_plan_record(plan), "sweep.json")
            progress = Progress(total=len(plan.combinations))
            for combination in plan.combinations:
                outcomes.append(_run_combination(plan, combination, sweep_run, progress))
            failed = [outcome for outcome in outcomes if outcome.status == "failed"]
            mlflow.log_metrics(
                {
                    "combinations_ran": sum(outcome.status == "ran" for outcome in outcomes),
                    "combinations_skipped": sum(outcome.status == "skipped" for outcome in outcomes),
                    "combinations_failed": len(failed),
                }
            )
            if failed:
                raise SweepIncompleteError(
                    f"{len(failed)} of {len(outcomes)} combinations failed: "
                    + "; ".join(f"{outcome.combination.label} ({outcome.error})" for outcome in failed)
                )
    except SweepIncompleteError:
        pass  # reported per combination; the sweep run is FAILED and a new start resumes it
    return SweepResult(sweep_run.info.run_id, plan, outcomes)


def finished_pipeline_run(config: ExperimentConfig) -> Run | None:
    """The newest FINISHED pipeline run of exactly this config in its experiment, or None."""
    return tracking.newest_run(
        tracking.experiment_id(config), {"stage": "pipeline", "config_hash": config.section_hash()}
    )


def _axes_and_fixed(overrides: list[str]) -> tuple[list[Axis], list[str], list[tuple[str, str]]]:
    """The axes, the plain overrides, and every override as (dotted key, text) in the user's order.

    As in `deeparch run`, a key given twice keeps its last value (which may be an axis or not).
    """
    latest: dict[str, str] = {}
    for item in overrides:
        path, _ = parse_override(item)  # rejects what is not key=value
        latest.pop(".".join(path), None)
        latest[".".join(path)] = item
    axes: list[Axis] = []
    fixed: list[str] = []
    ordered = list(latest.items())
    for key, item in ordered:
        values = split_values(item.partition("=")[2])
        if len(values) == 1:
            fixed.append(item)
            continue
        if not all(values):
            raise ConfigError(
                f"override {item!r}: an axis value is empty; allowed: v1,v2,... without empty values"
            )
        canonical = [_canonical(key, value) for value in values]
        repeated = [
            value for value, parsed in zip(values, canonical, strict=True) if canonical.count(parsed) > 1
        ]
        if repeated:
            raise ConfigError(
                f"override {item!r}: {', '.join(repeated)} are the same value of {key}; give each value once"
            )
        axes.append(Axis(key, tuple(values)))
    return axes, fixed, ordered


def _canonical(key: str, value: str) -> str:
    """A value text as parsed YAML, canonically serialised (so `1e-3` and `0.001` compare equal)."""
    parsed = parse_override(f"{key}={value}")[1]
    if isinstance(parsed, str):
        try:
            parsed = float(parsed)  # YAML 1.1 reads `1e-3` as a string; the config reads a float
        except ValueError:
            pass
    return json.dumps(parsed, sort_keys=True, default=str)


def _sampled(grid: list[tuple[str, ...]], axes: list[Axis], sample: int, seed: int) -> list[tuple[str, ...]]:
    """`sample` distinct combinations drawn from a canonical order: the same sweep draws the same."""

    def canonical(point: tuple[str, ...]) -> list[str]:
        return [_canonical(axis.key, value) for axis, value in zip(axes, point, strict=True)]

    chosen = set(random.Random(seed).sample(sorted(grid, key=canonical), sample))
    return [point for point in grid if point in chosen]


def _validated(
    experiment: str, axes: list[Axis], ordered: list[tuple[str, str]], grid: list[tuple[str, ...]]
) -> list[Combination]:
    """Resolve each combination's config; refuse the sweep when any is invalid or two coincide."""
    combinations: list[Combination] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for point in grid:
        chosen = {axis.key: f"{axis.key}={value}" for axis, value in zip(axes, point, strict=True)}
        combination_overrides = [chosen.get(key, item) for key, item in ordered]
        label = " ".join(chosen.values())
        try:
            config = load_experiment(experiment, combination_overrides)
        except ConfigError as error:
            problems.append(f"{label}: " + str(error).replace("\n", "\n  "))
            continue
        same = seen.setdefault(config.section_hash(), label)
        if same != label:
            problems.append(f"{label}: gives the same config as {same}; drop one of the two values")
        combinations.append(Combination(tuple(chosen.values()), config))
    if problems:
        shown = problems[:_MAX_LISTED_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise ConfigError(
            f"sweep of {experiment!r}: {len(problems)} of {len(grid)} combinations are invalid; "
            "no run was started:\n  " + "\n  ".join(shown) + more
        )
    destinations = {
        (tracking.tracking_uri(c.config), c.config.tracking.experiment or c.config.name) for c in combinations
    }
    if len(destinations) > 1:
        raise ConfigError(
            f"sweep of {experiment!r}: the combinations would log to {len(destinations)} MLflow experiments; "
            "allowed: one (do not sweep name, tracking.uri or tracking.experiment)"
        )
    return combinations


def _sweep_hash(experiment: str, axes: list[Axis], fixed: list[str], sample: int | None, seed: int) -> str:
    """Identity of a sweep: the experiment, its axes (order-free) and plain overrides, the sampling."""
    payload = {
        "experiment": experiment,
        "axes": {axis.key: sorted(_canonical(axis.key, value) for value in axis.values) for axis in axes},
        "fixed": sorted(fixed),
        "sample": [sample, seed] if sample is not None else None,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _check_against_data(plan: SweepPlan) -> None:
    """Refuse the sweep, before any run, when a combination's model cannot read its dataset."""
    from pipelines.data import load_dataset
    from pipelines.stages.train import check_config_fits_data, check_model_builds

    problems = []
    by_data: dict[str, list[Combination]] = {}
    for combination in plan.combinations:
        by_data.setdefault(combination.config.section_hash("data"), []).append(combination)
    for group in by_data.values():
        dataset = load_dataset(group[0].config.data)  # prepared once, reused by every combination
        for combination in group:
            try:
                check_config_fits_data(combination.config, dataset)
                check_model_builds(combination.config, dataset)
            except ConfigError as error:
                problems.append(f"{combination.label}: {error}")
    if problems:
        raise ConfigError(
            f"sweep of {plan.experiment!r}: {len(problems)} of {len(plan.combinations)} combinations "
            "cannot run on their data; no run was started:\n  " + "\n  ".join(problems)
        )


def _run_combination(
    plan: SweepPlan, combination: Combination, sweep_run: Run, progress: Progress
) -> SweepOutcome:
    """Skip a combination that finished earlier; otherwise run its pipeline under the sweep run."""
    from pipelines import runner

    config = combination.config
    finished = finished_pipeline_run(config)
    if finished is not None:
        _tag_member(finished, plan, combination)
        progress.skip()
        print(f"skipped {combination.label}: finished in run {finished.info.run_id}")
        return SweepOutcome(combination, "skipped", finished.info.run_id, dict(finished.data.metrics))
    progress.start(config.name, combination.label)
    try:
        result = runner.run_pipeline(config, progress=progress)
    except Exception as error:  # noqa: BLE001 - one failed combination must not stop the others
        tracking.end_runs_above(sweep_run)
        failed = _newest_child(sweep_run, config)
        reason = f"{type(error).__name__}: {error}"
        if failed is not None:
            _tag_member(failed, plan, combination)
            print(f"failed {combination.label} in run {failed.info.run_id}: {reason}")
        else:
            print(f"failed {combination.label} before its run started: {reason}")
            traceback.print_exc()
        return SweepOutcome(combination, "failed", failed.info.run_id if failed else None, error=reason)
    _tag_member(tracking.get_run(result.run_id), plan, combination)
    return SweepOutcome(combination, "ran", result.run_id, dict(result.evaluated.metrics))


def _tag_member(run: Run, plan: SweepPlan, combination: Combination) -> None:
    """Mark a pipeline run as one of the sweep's combinations (first sweep also in plain tags)."""
    label = combination.label
    tags = {member_tag(plan.sweep_hash): label}
    if SWEEP_HASH_TAG not in run.data.tags:
        tags.update({SWEEP_HASH_TAG: plan.sweep_hash, SWEEP_OVERRIDES_TAG: label})
    mlflow.MlflowClient().log_batch(
        run.info.run_id, tags=[RunTag(key, value[:5000]) for key, value in tags.items()]
    )


def _newest_child(sweep_run: Run, config: ExperimentConfig) -> Run | None:
    """The newest pipeline run of `config` nested under the sweep run (the one that just failed)."""
    return tracking.newest_run(
        tracking.experiment_id(config),
        {
            "stage": "pipeline",
            "config_hash": config.section_hash(),
            "mlflow.parentRunId": sweep_run.info.run_id,
        },
        finished=False,
    )


def _plan_record(plan: SweepPlan) -> dict:
    """The sweep's plan as an artifact: axes, plain overrides, sampling and combinations."""
    return {
        "experiment": plan.experiment,
        "sweep_hash": plan.sweep_hash,
        "axes": {axis.key: list(axis.values) for axis in plan.axes},
        "fixed": list(plan.fixed),
        "grid_size": plan.grid_size,
        "sample": plan.sample,
        "seed": plan.seed,
        "combinations": [combination.label for combination in plan.combinations],
    }
