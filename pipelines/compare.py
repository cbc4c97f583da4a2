"""Compare finished pipeline runs: the config values that differ between them and one metric.

Each row is a FINISHED pipeline run of an experiment (or of a sweep): the config params in which
the runs differ, the metric's final value and its best value over the train run's epochs (for a
`test_*` metric, the matching `val_*` history), best run first. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow

from pipelines import tracking
from pipelines.config import ConfigError, ExperimentConfig, load_experiments
from pipelines.metrics import higher_is_better
from pipelines.sweep import SWEEP_HASH_TAG, SWEEP_STAGE, member_tag
from pipelines.tune import TRIAL_STATE_TAG, TRIAL_TAG, TUNE_STAGE

if TYPE_CHECKING:
    from mlflow.entities import Run

FORMATS = ("table", "csv", "markdown")
# The metric a comparison sorts by when none is named: the first one the runs logged.
DEFAULT_METRICS = ("test_accuracy", "conditional_accuracy", "test_mse", "frechet_ratio", "test_loss")
# Metric names holding one of these are better when lower; every other metric when higher.
_CONFIG_SECTIONS = frozenset(ExperimentConfig.model_fields) - ExperimentConfig.search_only_fields
# The tags a comparison of a tune run's trials shows beside each run: trial number and state.
TRIAL_COLUMNS = (TRIAL_TAG, TRIAL_STATE_TAG)


@dataclass
class ComparedRun:
    """One pipeline run: its differing config values and the metric, final and best epoch."""

    run: Run
    params: dict[str, str]
    final: float | None
    best: float | None
    best_epoch: int | None

    @property
    def run_id(self) -> str:
        """The pipeline run's id."""
        return self.run.info.run_id


@dataclass
class Comparison:
    """Runs sorted best first, with the config keys whose values differ between them."""

    metric: str
    history_metric: str | None
    higher_is_better: bool
    columns: list[str]
    rows: list[ComparedRun]
    experiment_ids: list[str]
    scope: str
    tag_columns: tuple[str, ...] = ()


def experiment_runs(experiment: str) -> tuple[list[Run], list[str]]:
    """FINISHED pipeline runs of an experiment (shipped name, YAML path or suite, or an MLflow
    experiment name) and the MLflow experiment ids they come from."""
    try:
        configs = load_experiments(experiment)
    except ConfigError:
        tracking.configure()
        found = mlflow.MlflowClient().get_experiment_by_name(experiment)
        if found is None:
            raise
        experiment_ids = [found.experiment_id]
    else:
        experiment_ids = []
        for config in configs:
            tracking.configure(config)
            found = mlflow.MlflowClient().get_experiment_by_name(config.tracking.experiment or config.name)
            if found is not None:  # looking must not create empty experiments
                experiment_ids.append(found.experiment_id)
    runs = _finished_pipeline_runs(sorted(set(experiment_ids))) if experiment_ids else []
    if not runs:
        raise ConfigError(
            f"experiment {experiment!r} has no FINISHED pipeline runs in {mlflow.get_tracking_uri()}; "
            f"start one with `deeparch run -e {experiment}` or `deeparch sweep -e {experiment} ...`"
        )
    return runs, sorted({run.info.experiment_id for run in runs})


def sweep_runs(sweep_run_id: str) -> tuple[list[Run], list[str]]:
    """FINISHED pipeline runs that belong to a sweep (ran under it or reused by it)."""
    tracking.configure()
    sweep = tracking.get_run(sweep_run_id)
    sweep_hash = sweep.data.tags.get(SWEEP_HASH_TAG)
    if sweep.data.tags.get("stage") != SWEEP_STAGE or not sweep_hash:
        raise ConfigError(
            f"run {sweep_run_id!r} is a {sweep.data.tags.get('stage', 'non-deeparch')!r} run; "
            "give the id of a sweep run (`deeparch sweep` prints it)"
        )
    experiment_ids = [sweep.info.experiment_id]
    tag = member_tag(sweep_hash)
    runs = [run for run in _finished_pipeline_runs(experiment_ids) if tag in run.data.tags]
    if not runs:
        raise ConfigError(f"sweep run {sweep_run_id!r} has no FINISHED pipeline runs yet")
    return runs, experiment_ids


def tune_runs(tune_run_id: str) -> tuple[list[Run], list[str], str]:
    """FINISHED pipeline runs of a tune run's trials (pruned ones included) and its metric."""
    tracking.configure()
    tune = tracking.get_run(tune_run_id)
    if tune.data.tags.get("stage") != TUNE_STAGE:
        raise ConfigError(
            f"run {tune_run_id!r} is a {tune.data.tags.get('stage', 'non-deeparch')!r} run; "
            "give the id of a tune run (`deeparch tune` prints it)"
        )
    experiment_ids = [tune.info.experiment_id]
    runs = [
        run
        for run in _finished_pipeline_runs(experiment_ids)
        if run.data.tags.get(f"{TUNE_STAGE}_run_id") == tune_run_id
    ]
    if not runs:
        raise ConfigError(f"tune run {tune_run_id!r} has no FINISHED trials yet")
    return runs, experiment_ids, tune.data.tags.get("tune_metric", DEFAULT_METRICS[0])


def compare(
    runs: list[Run],
    metric: str | None,
    experiment_ids: list[str],
    scope: str,
    tag_columns: tuple[str, ...] = (),
) -> Comparison:
    """Rows for `runs`: differing config values, final and best-epoch `metric`, best run first;
    `tag_columns` are run tags shown after the run id (a trial's number and state)."""
    client = mlflow.MlflowClient()
    train_runs = {run.info.run_id: _train_run(client, run) for run in runs}
    metric = metric or _default_metric(runs, train_runs)
    _check_logged(metric, runs, train_runs)
    history_metric = _history_metric(metric, train_runs.values())
    higher = higher_is_better(metric)
    all_params = {run.info.run_id: _config_params(run, train_runs[run.info.run_id]) for run in runs}
    rows = []
    for run in runs:
        train = train_runs[run.info.run_id]
        history = _history(client, train, history_metric)
        final = run.data.metrics.get(metric)
        if final is None and train is not None:
            own_history = history if history_metric == metric else _history(client, train, metric)
            final = own_history[-1][1] if own_history else train.data.metrics.get(metric)
        best, best_epoch = _best(history, higher)
        rows.append(ComparedRun(run, all_params[run.info.run_id], final, best, best_epoch))
    rows.sort(key=lambda row: (_sort_key(row.final, higher), _sort_key(row.best, higher)))
    return Comparison(
        metric,
        history_metric,
        higher,
        _differing(all_params.values()),
        rows,
        experiment_ids,
        scope,
        tag_columns,
    )


def render(comparison: Comparison, output_format: str = "table") -> str:
    """The comparison as an aligned table, CSV (full precision, with run URLs) or Markdown."""
    metric, history = comparison.metric, comparison.history_metric
    many_experiments = len(comparison.experiment_ids) > 1
    header = [
        "run",
        *comparison.tag_columns,
        *(["experiment"] if many_experiments else []),
        *comparison.columns,
        metric,
        f"best {history}" if history else "best",
        "epoch",
    ]
    rows = []
    for row in comparison.rows:
        if output_format == "markdown":
            run_cell = f"[{row.run_id[:8]}]({tracking.run_url(row.run)})"
        else:
            run_cell = row.run_id
        cells = [
            run_cell,
            *(row.run.data.tags.get(tag, "") for tag in comparison.tag_columns),
            *([row.run.data.tags.get("experiment", row.run.info.run_name or "")] if many_experiments else []),
            *(row.params.get(column, "") for column in comparison.columns),
            _number(row.final, output_format),
            _number(row.best, output_format),
            "" if row.best_epoch is None else str(row.best_epoch),
        ]
        rows.append(cells)
    if output_format == "csv":
        header.append("url")
        for cells, row in zip(rows, comparison.rows, strict=True):
            cells.append(tracking.run_url(row.run))
    return render_table(header, rows, output_format)


def render_table(header: list[str], rows: list[list[str]], output_format: str = "table") -> str:
    """Rows of cells as an aligned text table, CSV or a Markdown table."""
    if output_format not in FORMATS:
        raise ConfigError(f"--format {output_format!r} is not allowed; allowed: {', '.join(FORMATS)}")
    if output_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
        return buffer.getvalue().rstrip("\n")
    if output_format == "markdown":

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        return "\n".join([line(header), line(["---"] * len(header)), *(line(cells) for cells in rows)])
    widths = [max(len(cells[column]) for cells in [header, *rows]) for column in range(len(header))]

    def aligned(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([aligned(header), "  ".join("-" * width for width in widths), *map(aligned, rows)])


def ui_links(comparison: Comparison, output_format: str = "table") -> str:
    """How to open the same runs in the MLflow UI: every experiment's pipeline runs in one table
    (when the runs span several experiments, as a suite's do), each experiment's runs table and
    each run."""
    experiments = [tracking.experiment_url(experiment_id) for experiment_id in comparison.experiment_ids]
    start = f"start it with `deeparch ui`, or `{' '.join(tracking.ui_command())}`"
    if output_format == "markdown":
        links = ", ".join(f"[runs table]({url})" for url in experiments)
        if len(comparison.experiment_ids) > 1:
            side_by_side = tracking.compare_experiments_url(comparison.experiment_ids)
            links = f"[all {len(experiments)} experiments side by side]({side_by_side}), {links}"
        return f"Open these runs in the MLflow UI ({start}): {links}; each run id above links to its run."
    lines = [f"Open these runs in the MLflow UI ({start}):"]
    if len(comparison.experiment_ids) > 1:
        side_by_side = tracking.compare_experiments_url(comparison.experiment_ids)
        lines.append(f"  all {len(experiments)} experiments, pipeline runs only: {side_by_side}")
    lines += [f"  experiment: {url}" for url in experiments]
    lines += [f"  {row.run_id}: {tracking.run_url(row.run)}" for row in comparison.rows]
    return "\n".join(lines)


def describe(comparison: Comparison) -> str:
    """One line on what the rows are and how they are ordered."""
    direction = "higher" if comparison.higher_is_better else "lower"
    best = (
        f"; best = the best {comparison.history_metric} over the train run's epochs"
        if comparison.history_metric
        else ""
    )
    return (
        f"{len(comparison.rows)} finished pipeline runs of {comparison.scope}, sorted by "
        f"{comparison.metric} ({direction} is better){best}"
    )


def _finished_pipeline_runs(experiment_ids: list[str]) -> list[Run]:
    return mlflow.search_runs(
        experiment_ids=experiment_ids,
        filter_string="tags.stage = 'pipeline' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=50000,
        output_format="list",
    )


def _train_run(client: mlflow.MlflowClient, run: Run) -> Run | None:
    """The train run a pipeline run used (ran or reused), when it still exists."""
    train_run_id = run.data.tags.get("train_run_id")
    if not train_run_id:
        return None
    try:
        return client.get_run(train_run_id)
    except mlflow.exceptions.MlflowException:
        return None


def _config_params(run: Run, train: Run | None) -> dict[str, str]:
    """The run's config, flattened: the train run's params, else the run's own config.yaml."""
    if train is not None and train.data.params:
        return {
            key: value for key, value in train.data.params.items() if key.split(".")[0] in _CONFIG_SECTIONS
        }
    try:
        return tracking.run_config(run).flat_params()
    except Exception:  # noqa: BLE001 - a run without a readable config still has its metric
        return {}


def _differing(all_params) -> list[str]:
    """Config keys that hold different values in different runs, in a stable order.

    A key some runs lack (a field added since, another architecture's hyper-parameter) differs
    only if the runs that have it disagree.
    """
    all_params = list(all_params)
    keys = sorted({key for params in all_params for key in params})
    return [key for key in keys if len({params[key] for params in all_params if key in params}) > 1]


def _default_metric(runs: list[Run], train_runs: dict[str, Run | None]) -> str:
    logged = _logged_metrics(runs, train_runs)
    return next((metric for metric in DEFAULT_METRICS if metric in logged), DEFAULT_METRICS[0])


def _logged_metrics(runs: list[Run], train_runs: dict[str, Run | None]) -> set[str]:
    logged = {name for run in runs for name in run.data.metrics}
    return logged | {name for train in train_runs.values() if train for name in train.data.metrics}


def _check_logged(metric: str, runs: list[Run], train_runs: dict[str, Run | None]) -> None:
    logged = _logged_metrics(runs, train_runs)
    if metric not in logged:
        raise ConfigError(
            f"--metric {metric!r} is not logged by these {len(runs)} runs; "
            f"allowed: {', '.join(sorted(logged))}"
        )


def _history_metric(metric: str, train_runs) -> str | None:
    """The per-epoch metric of the train runs that tracks `metric`: itself, or val_* for test_*."""
    logged = {name for train in train_runs if train for name in train.data.metrics}
    if metric in logged:
        return metric
    validation = f"val_{metric.removeprefix('test_')}"
    return validation if metric.startswith("test_") and validation in logged else None


def _history(client: mlflow.MlflowClient, train: Run | None, metric: str | None) -> list[tuple[int, float]]:
    """(epoch, value) of a train run's metric, in epoch order."""
    if train is None or metric is None:
        return []
    points = client.get_metric_history(train.info.run_id, metric)
    return sorted((point.step, point.value) for point in points)


def _best(history: list[tuple[int, float]], higher: bool) -> tuple[float | None, int | None]:
    finite = [(epoch, value) for epoch, value in history if math.isfinite(value)]
    if not finite:
        return None, None
    # The best value; on a tie, the earliest epoch that reached it.
    epoch, value = max(finite, key=lambda point: (point[1] if higher else -point[1], -point[0]))
    return value, epoch


def _sort_key(value: float | None, higher: bool) -> tuple[int, float]:
    if value is None or not math.isfinite(value):
        return (1, 0.0)
    return (0, -value if higher else value)


def _number(value: float | None, output_format: str) -> str:
    if value is None:
        return ""
    return repr(value) if output_format == "csv" else f"{value:.4f}"
