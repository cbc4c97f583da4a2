"""Tuning: an Optuna study whose trials are pipeline runs nested under one `tune` run.

The experiment's `tune.space` maps dotted config keys to ranges or choices; each trial draws a
value for every key, which is validated like any override, and runs prepare -> train -> evaluate
with a pruning callback that reports the validation metric at each epoch end. The study lives in
a database (sqlite beside the local MLflow store, or the team's PostgreSQL), so any number of
workers running the same command share it: Optuna's `MaxTrialsCallback` stops them at the
study's total, its heartbeat fails (and retries) the trials of a worker that died, and a worker
started again continues the study. Nothing here imports TensorFlow or Optuna until a study runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mlflow

from pipelines import tracking
from pipelines.config import ConfigError, ExperimentConfig, SearchRange, load_experiment
from pipelines.metrics import higher_is_better
from pipelines.progress import Progress

if TYPE_CHECKING:
    import optuna
    from mlflow.entities import Run

TUNE_STAGE = "tune"
STUDY_TAG = "study"
TRIAL_TAG = "trial"
TRIAL_STATE_TAG = "trial_state"
BEST_CONFIG_ARTIFACT = "best.yaml"
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate")
# The epoch-end metrics of a compiled model, by task; the default tuned metric comes first.
_EPOCH_METRICS = {
    "classification": ("val_accuracy", "val_loss", "accuracy", "loss"),
    "regression": ("val_loss", "val_mae", "loss", "mae"),
    "forecast": ("val_loss", "val_mae", "loss", "mae"),
}
_SCALAR = (str, int, float, bool, type(None))
# The median pruner's default warm-up, as a share of a trial's epochs (README, "Tuning").
PRUNING_WARMUP_SHARE = 0.75
_MAX_LISTED_PROBLEMS = 10


class BudgetTaken(RuntimeError):
    """The study's trials are all complete or running: this trial is not run."""


@dataclass
class TunePlan:
    """A validated study: the experiment and overrides every trial starts from, the space, the
    metric and its direction, and where the study lives."""

    experiment: str
    overrides: tuple[str, ...]
    config: ExperimentConfig
    metric: str  # settled by `check_against_data`, as are the study name and storage
    study_name: str
    storage: str
    bound_configs: list[ExperimentConfig] = field(default_factory=list, repr=False)

    @property
    def space(self) -> dict[str, SearchRange]:
        """Dotted config key -> its range or choices."""
        return self.config.tune.space

    @property
    def direction(self) -> str:
        """`maximize` or `minimize`, implied by the metric's name."""
        return "maximize" if higher_is_better(self.metric) else "minimize"

    @property
    def trials(self) -> int:
        """The study's total: `tune.trials`, or the grid's size when the grid sampler has fewer
        points (it stops there: a trial more would run a point again)."""
        trials = self.config.tune.trials
        if self.config.tune.sampler == "grid":
            return min(trials, math.prod(len(values) for values in _grid_search_space(self.space).values()))
        return trials

    @property
    def max_epochs(self) -> int:
        """The most epochs a trial trains: `train.epochs`, or its upper bound when searched."""
        epochs = self.space.get("train.epochs")
        return int(max(epochs.bounds())) if epochs else self.config.train.epochs

    @property
    def warmup_epochs(self) -> int:
        """Epochs before the median pruner may stop a trial: `tune.warmup_epochs`, or three
        quarters of `max_epochs`. Early epochs say little of how a trial ends under a schedule
        that decays the learning rate (every shipped experiment's): in cnn-mnist1d's grids, which
        `benchmarks/tune_replay.py` replays, the points that ended best were behind the median
        of all points at epoch 3 of 20 and no more than level with it at epoch 12."""
        warmup = self.config.tune.warmup_epochs
        return warmup if warmup is not None else math.ceil(PRUNING_WARMUP_SHARE * self.max_epochs)

    def trial_config(self, drawn: dict[str, Any]) -> ExperimentConfig:
        """The config of a trial that drew `drawn`, validated like any override."""
        return load_experiment(self.experiment, [*self.overrides, *as_overrides(drawn)])

    def identity(self) -> dict[str, str]:
        """What workers joining the study must agree on."""
        return {
            "experiment": self.experiment,
            "config_hash": self.config.section_hash(),
            "space": _space_json(self.space),
            "metric": self.metric,
        }


@dataclass
class TuneResult:
    """The tune run and where the study stands after this worker."""

    run_id: str
    plan: TunePlan
    counts: dict[str, int]
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_config_path: str | None = None
    rows: list[list[str]] = field(default_factory=list)


def as_overrides(drawn: dict[str, Any]) -> list[str]:
    """Drawn values as `key=value` overrides (JSON is YAML, so every value reads back as drawn)."""
    return [f"{key}={json.dumps(value)}" for key, value in drawn.items()]


def plan_tune(
    experiment: str, overrides: list[str], study_name: str | None = None, storage: str | None = None
) -> TunePlan:
    """Validate the experiment and its search space (every bound and choice, like an override)
    without reading data; `check_against_data` does the rest, before any trial or run starts."""
    config = load_experiment(experiment, overrides)
    space = config.tune.space
    if not space:
        raise ConfigError(
            f"tune.space of {experiment!r} is empty; give ranges, e.g. "
            "'tune.space.train.learning_rate={low: 1.0e-4, high: 1.0e-2, log: true}'"
        )
    bound_configs = _bound_configs(experiment, overrides, space)
    if config.tune.sampler == "grid":
        _grid_search_space(space)  # refuses ranges without a grid
    return TunePlan(
        experiment, tuple(overrides), config, "", study_name or "", storage or "", [config, *bound_configs]
    )


def check_against_data(plan: TunePlan) -> None:
    """Refuse the plan when a bound's config cannot read its data (preparing it once, before any
    run); then settle the metric, the study's name and its storage."""
    from pipelines.data import load_dataset
    from pipelines.stages.train import check_config_fits_data, check_model_builds

    configs = plan.bound_configs
    dataset = load_dataset(configs[0].data)  # prepared once, reused by every trial
    for config in configs:
        if config.section_hash("data") != configs[0].section_hash("data"):
            continue  # a searched data key: checked against its own data when its trial runs
        try:
            check_config_fits_data(config, dataset)
            check_model_builds(config, dataset)
        except ConfigError as error:
            raise ConfigError(f"tune.space of {plan.experiment!r}: {error}; no trial was started") from None
    task = "generation" if plan.config.architecture == "gan" else dataset.spec.task
    plan.metric = _metric(plan.config, task)
    tracking.configure(plan.config)
    plan.storage = tracking.study_storage_uri(plan.storage or None)
    if not plan.study_name:
        identity = {**plan.identity(), "sampler": plan.config.tune.sampler}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
        plan.study_name = f"{plan.config.name}-{digest}"


def run_tune(
    plan: TunePlan,
    timeout: float | None = None,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
) -> TuneResult:
    """Run trials of the study until it holds `plan.trials` complete or pruned ones (counting
    every worker's), `timeout` seconds pass, Ctrl-C, or one of `callbacks` (Optuna's, called
    after each trial) stops the study; then log the best config and the plots."""
    import optuna

    from pipelines import runner

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial is reported below instead
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    tracking.configure(plan.config)
    study = _study(plan)
    identity = {STUDY_TAG: plan.study_name, "study_storage": tracking.masked_uri(plan.storage)}
    run_id = tracking.shared_run_id(plan.config, TUNE_STAGE, identity)
    tune_tags = {
        "tune_metric": plan.metric,
        "tune_direction": plan.direction,
        "tune_sampler": plan.config.tune.sampler,
        "tune_pruner": plan.config.tune.pruner,
        "tune_trials": str(plan.trials),
        "tune_space": _space_json(plan.space)[:5000],
    }
    if plan.config.tune.pruner == "median":
        tune_tags["tune_warmup_epochs"] = str(plan.warmup_epochs)
    with tracking.stage_run(plan.config, TUNE_STAGE, resume_run_id=run_id) as tune_run:
        mlflow.set_tags(tune_tags)
        optuna.storages.fail_stale_trials(study)  # what a killed worker left RUNNING
        runner.prepare_once(plan.config)  # trials then reuse it
        if _taken(study) >= plan.trials:
            print(f"study {plan.study_name} already holds its {plan.trials} trials")
        else:
            progress = Progress(total=plan.trials)
            study.optimize(
                _objective(plan, tune_run, progress),
                timeout=timeout,
                catch=(Exception,),  # a failed trial is reported; the others still run
                gc_after_trial=True,
                callbacks=[
                    # The study's total over all workers: done or running trials fill it.
                    optuna.study.MaxTrialsCallback(
                        plan.trials,
                        states=(
                            optuna.trial.TrialState.COMPLETE,
                            optuna.trial.TrialState.PRUNED,
                            optuna.trial.TrialState.RUNNING,
                        ),
                    ),
                    # A study whose every trial fails would otherwise never end.
                    optuna.study.MaxTrialsCallback(plan.trials, states=(optuna.trial.TrialState.FAIL,)),
                    lambda study, trial: _log_study(plan, study, tune_run.info.run_id),
                    *callbacks,
                ],
            )
        result = _log_study(plan, study, tune_run.info.run_id)
        _log_plots(study, plan.metric)
    return result


def _bound_configs(experiment: str, overrides: list[str], space: dict[str, SearchRange]):
    """The configs at every bound and choice of the space; refuse the space when one is invalid."""
    configs, problems = [], []
    for key, search_range in space.items():
        for value in search_range.bounds():
            try:
                configs.append(load_experiment(experiment, [*overrides, *as_overrides({key: value})]))
            except ConfigError as error:
                reason = str(error).split("\n", 1)[-1].strip().replace("\n", "; ")
                problems.append(f"tune.space.{key}: {json.dumps(value)} is refused: {reason}")
                break  # one problem per key: an unknown key is refused at every bound
    if problems:
        shown = problems[:_MAX_LISTED_PROBLEMS]
        raise ConfigError(
            f"tune.space of {experiment!r} has {len(problems)} invalid key(s); no trial was started:\n  "
            + "\n  ".join(shown)
        )
    return configs


def _metric(config: ExperimentConfig, task: str) -> str:
    """`tune.metric`, or the task's validation headline; refused when training does not log it."""
    allowed = _EPOCH_METRICS.get(task, ())
    if not allowed:
        raise ConfigError(
            f"tune: a {config.architecture} model ({task}) logs no validation metric to tune; "
            "allowed: classification, regression and forecast experiments"
        )
    metric = config.tune.metric or allowed[0]
    if metric not in allowed:
        raise ConfigError(
            f"tune.metric: {metric!r} is not logged at each epoch end of a {task} training; "
            f"allowed: {', '.join(allowed)}"
        )
    return metric


def _space_json(space: dict[str, SearchRange]) -> str:
    return json.dumps(
        {key: search_range.model_dump(exclude_none=True) for key, search_range in space.items()},
        sort_keys=True,
    )


def _grid_search_space(space: dict[str, SearchRange]) -> dict[str, list[Any]]:
    """The grid of every key (choices as Optuna stores them), for `--sampler grid`."""
    grid = {}
    for key, search_range in space.items():
        values = search_range.grid()
        if values is None:
            raise ConfigError(
                f"tune.space.{key}: --sampler grid needs a step for the float range "
                f"{search_range.low}..{search_range.high}; allowed: give step, choices, or --sampler tpe"
            )
        grid[key] = [_encoded(value) for value in values]
    return grid


def _encoded(value: Any) -> Any:
    """A choice as Optuna stores it: scalars as they are, lists and mappings as JSON text."""
    return value if isinstance(value, _SCALAR) else json.dumps(value)


def _suggest(trial: optuna.Trial, key: str, search_range: SearchRange) -> Any:
    """The trial's value for one key of the space."""
    if search_range.choices is not None:
        encoded = {json.dumps(_encoded(choice)): choice for choice in search_range.choices}
        drawn = trial.suggest_categorical(key, [_encoded(choice) for choice in search_range.choices])
        return encoded[json.dumps(drawn)]
    if search_range.integer:
        return trial.suggest_int(
            key, search_range.low, search_range.high, step=search_range.step or 1, log=search_range.log
        )
    return trial.suggest_float(
        key, search_range.low, search_range.high, step=search_range.step, log=search_range.log
    )


def _decoded(plan: TunePlan, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's params (choices as Optuna stores them) as config values."""
    decoded = {}
    for key, value in params.items():
        choices = plan.space[key].choices if key in plan.space else None
        decoded[key] = next((c for c in choices if _encoded(c) == value), value) if choices else value
    return decoded


def _study(plan: TunePlan) -> optuna.Study:
    """The study in its storage (created on first use), with a heartbeat so that the trials of a
    worker that died are failed and run again; refused when it was started with another setup."""
    import optuna
    import sqlalchemy

    tune = plan.config.tune
    storage_options = {"connect_args": {"timeout": 60}} if plan.storage.startswith("sqlite") else {}
    # Workers that start together would each create the tables of a new study database: on this
    # machine they take turns; from other machines, a worker that lost the race tries again.
    for attempt in range(3):
        try:
            with tracking.store_lock():
                storage = optuna.storages.RDBStorage(
                    plan.storage,
                    engine_kwargs=storage_options,
                    heartbeat_interval=tune.heartbeat_seconds,
                    grace_period=2 * tune.heartbeat_seconds,
                    heartbeat_stale_trial_callback=_RetryStaleTrial(plan, max_retry=2),
                )
            break
        except sqlalchemy.exc.IntegrityError:
            if attempt == 2:
                raise
            time.sleep(1)
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: tpe_sampler(tune.startup_trials, tune.seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=tune.seed),
        "grid": lambda: optuna.samplers.GridSampler(_grid_search_space(plan.space), seed=tune.seed),
    }
    pruners: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
        "median": lambda: median_pruner(tune.startup_trials, plan.warmup_epochs),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=plan.max_epochs),
        "none": optuna.pruners.NopPruner,
    }
    study = optuna.create_study(
        study_name=plan.study_name,
        storage=storage,
        sampler=samplers[tune.sampler](),
        pruner=pruners[tune.pruner](),
        direction=plan.direction,
        load_if_exists=True,
    )
    recorded = study.user_attrs.get("deeparch")
    if recorded is None:
        study.set_user_attr("deeparch", plan.identity())
    elif recorded != plan.identity():
        differing = ", ".join(key for key in plan.identity() if recorded.get(key) != plan.identity()[key])
        raise ConfigError(
            f"--study {plan.study_name!r} was started with another {differing} ({recorded}); "
            "allowed: the same experiment, overrides and tune.space, or another --study"
        )
    return study


def tpe_sampler(startup_trials: int, seed: int | None) -> optuna.samplers.TPESampler:
    """`--sampler tpe`: Optuna's TPE after `startup_trials` random draws (also replayed by
    `benchmarks/tune_replay.py`)."""
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=startup_trials, seed=seed)


def median_pruner(startup_trials: int, warmup_epochs: int) -> optuna.pruners.MedianPruner:
    """`--pruner median`: stops a trial whose metric at an epoch end, from `warmup_epochs` on, is
    worse than the median of complete trials there, once `startup_trials` have completed."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)


class _RetryStaleTrial:
    """Optuna's retry of a trial whose worker stopped sending heartbeats, plus closing the MLflow
    runs that worker left RUNNING (KILLED, with the reason)."""

    def __init__(self, plan: TunePlan, max_retry: int) -> None:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        self.plan = plan
        self.retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        reason = (
            f"trial {trial.number}'s worker sent no heartbeat for "
            f"{2 * self.plan.config.tune.heartbeat_seconds} s (killed?); the trial runs again"
        )
        ended = tracking.end_abandoned_runs(
            self.plan.config, {STUDY_TAG: self.plan.study_name, TRIAL_TAG: str(trial.number)}, reason
        )
        print(
            f"trial {trial.number} failed: {reason}" + (f" (runs {', '.join(ended)} KILLED)" if ended else "")
        )


def _taken(study: optuna.Study, before: int | None = None) -> int:
    """Trials that fill the study's total: complete, pruned, and running (those numbered below
    `before` only, when given)."""
    from optuna.trial import TrialState

    trials = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    )
    return sum(
        1 for trial in trials if trial.state != TrialState.RUNNING or before is None or trial.number < before
    )


def _objective(plan: TunePlan, tune_run: Run, progress: Progress) -> Callable[[optuna.Trial], float]:
    """One trial: draw, validate, run the pipeline with pruning, return the final metric."""
    import optuna

    from pipelines import runner
    from pipelines.callbacks import TrialPruning

    def objective(trial: optuna.Trial) -> float:
        # MaxTrialsCallback stops a worker after its trial; two workers that finish together may
        # both start one more than the total holds: the later-numbered one does not run.
        if _taken(trial.study, before=trial.number) >= plan.trials:
            trial.study.stop()
            raise BudgetTaken(f"the study's {plan.trials} trials are complete or running")
        drawn = {key: _suggest(trial, key, search_range) for key, search_range in plan.space.items()}
        label = " ".join(as_overrides(drawn))
        try:
            config = plan.trial_config(drawn)
        except ConfigError as error:
            print(f"trial {trial.number} failed before its run: {label}: {error}")
            raise
        pruning = TrialPruning(trial, plan.metric)
        tags = {STUDY_TAG: plan.study_name, TRIAL_TAG: str(trial.number)}
        progress.start(config.name, f"trial {trial.number}: {label}")
        try:
            result = runner.run_pipeline(
                config,
                progress=progress,
                train_callbacks=[pruning],
                tags=tags,
                export=False,
                run_name=f"{config.name} · trial {trial.number}",
            )
        except Exception as error:
            tracking.end_runs_above(tune_run)
            failed = tracking.newest_run(tracking.experiment_id(config), tags, finished=False)
            if failed is not None:
                mlflow.MlflowClient().set_tag(failed.info.run_id, TRIAL_STATE_TAG, "FAIL")
            print(f"trial {trial.number} failed: {type(error).__name__}: {error}")
            if not isinstance(error, ConfigError):
                traceback.print_exc()
            raise
        trial.set_user_attr("pipeline_run_id", result.run_id)
        value = _final_value(result.trained, plan.metric)
        state = {TRIAL_STATE_TAG: "COMPLETE"}
        if pruning.pruned_epoch is not None:
            state = {TRIAL_STATE_TAG: "PRUNED", "pruned": "true", "pruned_epoch": str(pruning.pruned_epoch)}
        mlflow.MlflowClient().log_batch(
            result.run_id, tags=[mlflow.entities.RunTag(key, value) for key, value in state.items()]
        )
        shown = f"{plan.metric} {value:.4f}"
        if pruning.pruned_epoch is not None:
            print(
                f"trial {trial.number} pruned at epoch {pruning.pruned_epoch}: {shown} (run {result.run_id})"
            )
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_epoch}")
        print(f"trial {trial.number} complete: {shown} (run {result.run_id})")
        return value

    return objective


def _final_value(trained, metric: str) -> float:
    """The metric at the last epoch a train run trained (reused runs: from MLflow)."""
    history = trained.history.get(metric) or tracking.metric_histories(trained.run_id, [metric])[metric]
    if not history:
        raise ConfigError(f"tune.metric: train run {trained.run_id} logged no {metric!r}")
    return float(history[-1])


def _log_study(plan: TunePlan, study: optuna.Study, run_id: str) -> TuneResult:
    """Write where the study stands to the tune run: trial counts, the best value, params and
    config (`best.yaml`, which `deeparch run -e` reproduces); return it with a table of trials."""
    from optuna.trial import TrialState

    client = mlflow.MlflowClient()
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    finished = counts["complete"] + counts["pruned"]
    client.log_batch(
        run_id,
        metrics=[
            mlflow.entities.Metric(f"trials_{state}", count, _now(), finished)
            for state, count in counts.items()
            if state in ("complete", "pruned", "fail")
        ],
    )
    result = TuneResult(run_id, plan, counts, rows=_trial_rows(plan, trials))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return result
    best = study.best_trial
    params = _decoded(plan, best.params)
    result.best_trial, result.best_value, result.best_params = best.number, best.value, params
    run = client.get_run(run_id)
    result.best_config_path = tracking.artifact_file(run, BEST_CONFIG_ARTIFACT)
    client.log_metric(run_id, f"best_{plan.metric}", best.value, step=finished)
    if run.data.tags.get("best_trial") == str(best.number):
        return result
    client.log_batch(
        run_id,
        tags=[
            mlflow.entities.RunTag("best_trial", str(best.number)),
            mlflow.entities.RunTag("best_run_id", best.user_attrs.get("pipeline_run_id", "")),
            *(
                mlflow.entities.RunTag(f"best.{key}", json.dumps(value)[:5000])
                for key, value in params.items()
            ),
        ],
    )
    header = (
        f"# Best trial {best.number} of study {plan.study_name}: {plan.metric} {best.value:.6g}\n"
        f"# (tune run {run_id}). Reproduce it with `deeparch run -e best.yaml`.\n"
    )
    client.log_text(run_id, header + plan.trial_config(params).to_yaml(), BEST_CONFIG_ARTIFACT)
    client.log_dict(run_id, {"trial": best.number, "value": best.value, "params": params}, "best_params.json")
    return result


def _trial_rows(plan: TunePlan, trials: list[optuna.trial.FrozenTrial]) -> list[list[str]]:
    """One row per finished trial: number, state, metric, drawn values and pipeline run."""
    rows = []
    for trial in trials:
        if trial.state.name not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        value = trial.value if trial.value is not None else last_reported(trial)
        state = trial.state.name.lower()
        if trial.state.name == "PRUNED" and trial.intermediate_values:
            state += f" @{max(trial.intermediate_values)}"
        drawn = _decoded(plan, trial.params)
        rows.append(
            [
                str(trial.number),
                state,
                "-" if value is None or not math.isfinite(value) else f"{value:.4f}",
                " ".join(as_overrides(drawn)) or "-",
                trial.user_attrs.get("pipeline_run_id", "-") if trial.state.name != "FAIL" else "-",
            ]
        )
    return rows


def last_reported(trial: optuna.trial.FrozenTrial) -> float | None:
    """The metric a trial reported at its last epoch end (a pruned trial's final value)."""
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


def _log_plots(study: optuna.Study, metric: str) -> None:
    """Optuna's matplotlib plots of the study as artifacts of the active tune run (those the
    study cannot draw yet, e.g. importances before two complete trials, are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    for name in PLOTS:
        try:
            with warnings.catch_warnings():  # "too few trials" notes: the plot says as much
                warnings.simplefilter("ignore", UserWarning)
                axes = getattr(plots, f"plot_{name}")(study, target_name=metric)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            print(f"note: no {name} plot yet ({error})")
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.set_size_inches(10, 6)
        figure.tight_layout()
        tracking.log_figure(figure, f"optuna/{name}.png")
        plt.close(figure)


def _now() -> int:
    return int(time.time() * 1000)
