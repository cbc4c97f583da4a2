"""deeparch from Python: what the CLI does, as functions that return results and raise errors.

    from pipelines import api

    result = api.run("mlp-digits", overrides={"train.epochs": 3})
    result.metrics["test_accuracy"], result.model_uri, result.export_path

An experiment is a shipped name, a YAML file or an `ExperimentConfig`; overrides are a mapping of
dotted keys to values or a list of `key=value` strings, as on the command line. Invalid input
raises `ConfigError` before any run starts; progress lines go to stdout as in the CLI. Nothing
here ends the caller's process; it only quiets TensorFlow's and TFDS' logging, as the CLI does.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import ConfigError, ExperimentConfig, load_experiments, resolve
from pipelines.progress import Progress, native_stderr_filtered, quiet_libraries

if TYPE_CHECKING:
    from pipelines.compare import Comparison
    from pipelines.runner import PipelineResult
    from pipelines.stages.results import EvaluateResult, ExportResult, PrepareResult, TrainResult
    from pipelines.sweep import SweepResult
    from pipelines.tune import TuneResult

Experiment = str | os.PathLike | ExperimentConfig
Overrides = Mapping[str, Any] | Sequence[str] | None

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "compare",
    "evaluate",
    "export",
    "load",
    "prepare",
    "resume_train",
    "run",
    "sweep",
    "train",
    "tune",
]


def load(experiment: Experiment, overrides: Overrides = None) -> list[ExperimentConfig]:
    """Every experiment `experiment` names (one, or each of a suite's) resolved with `overrides`,
    printing what was changed to fit each one to its data."""
    _set_tensorflow_log_level()  # a custom builder's module imports TensorFlow as it is checked
    given = _override_list(overrides)
    if isinstance(experiment, ExperimentConfig):
        if not given:
            return [experiment]
        configs = [resolve(experiment.model_dump(mode="json"), given, source=experiment.name)]
    else:
        # A TFDS catalog name is checked against the catalog, which imports TensorFlow.
        with native_stderr_filtered():
            configs = load_experiments(os.fspath(experiment), given)
    _print_adjustments(configs)
    return configs


def run(
    experiment: Experiment,
    overrides: Overrides = None,
    *,
    out: str | os.PathLike | None = None,
    force: Collection[str] = (),
    export: bool = True,
    progress: Progress | None = None,
) -> PipelineResult:
    """prepare -> train -> evaluate -> export under one pipeline run, reusing finished stages
    unless `force` names them ("all": every one); the SavedModel goes to `out` when given, and
    `export=False` stops after evaluate."""
    config = _one(experiment, overrides)
    from pipelines import cache

    cache.forced_stages(force)  # a misspelt stage fails before any work
    _ready()
    from pipelines import runner

    if progress is None:
        progress = Progress()
        progress.start(config.name)
    return runner.run_pipeline(
        config, Path(out) if out else None, force=force, progress=progress, export=export
    )


def prepare(experiment: Experiment, overrides: Overrides = None) -> PrepareResult:
    """Read the experiment's data and log it in a prepare run."""
    config = _one(experiment, overrides)
    _ready()
    from pipelines import runner

    return runner.prepare(config)


def train(experiment: Experiment, overrides: Overrides = None) -> TrainResult:
    """Train the experiment's model in a train run (reusing a finished prepare run of its data)."""
    config = _one(experiment, overrides)
    _ready()
    from pipelines import runner

    return runner.train(config)


def resume_train(train_run_id: str) -> TrainResult:
    """Continue a killed or failed train run from its last checkpointed epoch, in the same run."""
    _ready()
    from pipelines import runner

    return runner.resume_train(train_run_id)


def evaluate(trained: str | TrainResult) -> EvaluateResult:
    """Score the model of a train run (its id, or `train`'s result) on its dataset's test split."""
    _ready()
    from pipelines import runner

    return runner.evaluate(_run_id(trained))


def export(
    trained: str | TrainResult, out: str | os.PathLike | None = None, register: str | None = None
) -> ExportResult:
    """Export the model of a train run as a SavedModel (to `out`, or export.dir/<name>-<run>),
    registered in MLflow's model registry under `register` when given."""
    _ready()
    from pipelines import runner

    return runner.export(_run_id(trained), Path(out) if out else None, register=register)


def sweep(
    experiment: str | os.PathLike, overrides: Overrides, *, random: int | None = None, seed: int = 0
) -> SweepResult:
    """One pipeline run per combination of the overrides' comma-separated values (`random`: that
    many combinations drawn with `seed`), nested under one sweep run; finished ones are skipped."""
    from pipelines.sweep import plan_sweep

    _set_tensorflow_log_level()
    experiment = os.fspath(experiment)
    plan = plan_sweep(experiment, _override_list(overrides), random, seed)  # validates every config
    if random is not None and plan.sample is None:
        print(f"--random {random} covers the whole grid of {plan.grid_size} combinations")
    _print_adjustments([combination.config for combination in plan.combinations])
    print(f"sweep {plan.sweep_hash} of {experiment}: {len(plan.combinations)} runs ({plan.describe()})")
    _ready()
    from pipelines.sweep import run_sweep

    return run_sweep(plan)


def tune(
    experiment: str | os.PathLike,
    overrides: Overrides = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    study: str | None = None,
    storage: str | None = None,
) -> TuneResult:
    """An Optuna study over the experiment's `tune.space` (`trials`, `sampler` and `pruner` override
    its tune section), its trials pipeline runs nested under one tune run; `timeout` in seconds."""
    from pipelines.tune import plan_tune

    if trials is not None and trials < 1:
        raise ConfigError(f"--trials {trials} is not allowed; give a number of trials >= 1")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout {timeout:g} is not allowed; give a number of seconds > 0")
    _set_tensorflow_log_level()
    flags = {"trials": trials, "sampler": sampler, "pruner": pruner}
    experiment = os.fspath(experiment)
    chosen = [f"tune.{key}={value}" for key, value in flags.items() if value is not None]
    given = [*_override_list(overrides), *chosen]
    with native_stderr_filtered():  # a TFDS catalog name is checked against the catalog
        plan = plan_tune(experiment, given, study, storage)  # validates the space
    _print_adjustments([plan.config])
    _ready()
    from pipelines import tracking
    from pipelines import tune as tuning

    tuning.check_against_data(plan)
    section = plan.config.tune
    pruning = f"{section.pruner} pruning" + (
        f" from epoch {plan.warmup_epochs}" if section.pruner == "median" else ""
    )
    print(
        f"study {plan.study_name} of {experiment}: {plan.trials} trials ({section.sampler}, "
        f"{pruning}) on {plan.metric} ({plan.direction}), in {tracking.masked_uri(plan.storage)}"
    )
    return tuning.run_tune(plan, timeout)


def compare(
    experiment: Experiment | None = None,
    *,
    sweep: str | None = None,
    tune: str | None = None,
    metric: str | None = None,
) -> Comparison:
    """The finished pipeline runs of an experiment, a sweep run or a tune run: the config values
    that differ between them and `metric` (default: the task's headline), best first."""
    from pipelines import compare as comparing

    if sum(scope is not None for scope in (experiment, sweep, tune)) != 1:
        raise ConfigError("compare needs exactly one of experiment, sweep or tune")
    tag_columns: tuple[str, ...] = ()
    if sweep is not None:
        runs, experiments = comparing.sweep_runs(sweep)
        scope = f"sweep run {sweep}"
    elif tune is not None:
        runs, experiments, tuned_metric = comparing.tune_runs(tune)
        scope = f"tune run {tune}"
        metric = metric or tuned_metric
        tag_columns = comparing.TRIAL_COLUMNS
    else:
        if isinstance(experiment, ExperimentConfig):
            experiment = experiment.tracking.experiment or experiment.name  # its MLflow experiment
        experiment = os.fspath(experiment)
        runs, experiments = comparing.experiment_runs(experiment)
        scope = f"experiment {experiment}"
    return comparing.compare(runs, metric, experiments, scope, tag_columns)


def _one(experiment: Experiment, overrides: Overrides) -> ExperimentConfig:
    """Exactly one experiment; a suite is an error here."""
    configs = load(experiment, overrides)
    if len(configs) != 1:
        names = ", ".join(config.name for config in configs)
        raise ConfigError(
            f"{os.fspath(experiment)!r} is a suite of {len(configs)} experiments ({names}); name one"
        )
    return configs[0]


def _override_list(overrides: Overrides) -> list[str]:
    """`{"train.epochs": 3}` or `["train.epochs=3"]` -> `["train.epochs=3"]`."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise ConfigError(f"overrides {overrides!r} is one string; give a list of key=value or a mapping")
    if isinstance(overrides, Mapping):
        from pipelines.tune import as_overrides  # values as JSON, which reads back as the same YAML

        return as_overrides(dict(overrides))
    return [str(item) for item in overrides]


def _run_id(trained: str | TrainResult) -> str:
    return trained if isinstance(trained, str) else trained.run_id


def _print_adjustments(configs: list[ExperimentConfig]) -> None:
    """One line for each change made to fit an experiment to its data (once per distinct line)."""
    lines = dict.fromkeys(f"{config.name}: {note}" for config in configs for note in config.adjustments)
    for line in lines:
        print(line)


def _set_tensorflow_log_level() -> None:
    """TensorFlow reads its C++ log level once, when it loads: 3 keeps its ERROR lines out too
    (e.g. grappler's while training the GAN), which are not the user's to act on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _ready() -> None:
    """Before a command's heavy imports: TensorFlow's log level, and the libraries quiet."""
    _set_tensorflow_log_level()
    quiet_libraries()
