"""The only module that knows MLflow's URIs and layout: store, runs, tags, links, models."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import subprocess
import tempfile
import traceback
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import mlflow
from mlflow.entities import RunStatus

from pipelines.config import ConfigError, ExperimentConfig, load_yaml, resolve

if TYPE_CHECKING:
    import keras
    from mlflow.entities import Run

LOCAL_STORE_DIR = Path("mlruns")
DATASETS_DIR = "datasets"
DEFAULT_UI_PORT = 5000
CONFIG_ARTIFACT = "config.yaml"
PARAM_VALUE_LIMIT = 6000  # MLflow's limit on a param value
MODEL_NAME = "model"
# The Optuna storage all workers of a team's studies share (e.g. postgresql://...), when not given.
TUNE_STORAGE_VARIABLE = "DEEPARCH_TUNE_STORAGE"
# Requirements written into every logged model: MLflow's own inference of them loads the model
# in a subprocess and costs seconds per run.
_MODEL_REQUIREMENTS = ("tensorflow-cpu", "keras", "mlflow")


def local_store_uri(store_dir: Path = LOCAL_STORE_DIR) -> str:
    """The sqlite URI of a local store folder (`mlruns/` by default)."""
    return f"sqlite:///{store_dir.resolve() / 'mlflow.db'}"


def dataset_store_dir() -> Path:
    """Where prepared datasets live: DEEPARCH_DATASET_STORE, else `datasets/` in the folder of the
    local sqlite store MLflow points at, else `mlruns/datasets` (for a tracking server)."""
    chosen = os.environ.get("DEEPARCH_DATASET_STORE")
    if chosen:
        return Path(chosen).expanduser().resolve()
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    # Unconfigured, MLflow names a database in the current folder: ours is `mlruns/` instead.
    uri = mlflow.get_tracking_uri() if is_tracking_uri_set() else tracking_uri()
    store = _local_store_dir(uri)
    return (store or LOCAL_STORE_DIR).resolve() / DATASETS_DIR


def tracking_uri(config: ExperimentConfig | None = None) -> str:
    """`tracking.uri`, else MLFLOW_TRACKING_URI, else the local sqlite store under `mlruns/`."""
    if config is not None and config.tracking.uri:
        return config.tracking.uri
    return os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri()


def configure(config: ExperimentConfig | None = None) -> str:
    """Point MLflow at the store for `config` (creating a local one if needed); return its URI."""
    uri = tracking_uri(config)
    mlflow.set_tracking_uri(uri)
    if _local_store_dir(uri) is not None:
        # Several processes opening a new store at once would all create its tables.
        with store_lock(uri), _quieter("mlflow.store.db.utils"):
            # Creates the tables of a new store, which MLflow announces at INFO level.
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    if is_tracking_server(uri):
        # A server that refuses our login says so here, before any run starts.
        with access_checked("log in"):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    return uri


@contextlib.contextmanager
def store_lock(uri: str | None = None) -> Iterator[None]:
    """Hold the local store's file lock (processes on this machine take turns); no-op for a
    server or another database."""
    store = _local_store_dir(uri or mlflow.get_tracking_uri())
    if store is None:
        yield
        return
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".deeparch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class TrackingAccessError(Exception):
    """The tracking server refused the user: no or wrong credentials (401), or no permission (403)."""


def access_error(error: Exception, action: str = "do this") -> TrackingAccessError | None:
    """The user-facing form of a tracking server's 401 or 403; None for any other error."""
    code = getattr(error, "error_code", None)
    uri = mlflow.get_tracking_uri()
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if code in ("UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED"):
        if not user:
            return TrackingAccessError(
                f"the tracking server {uri} needs a login: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD to a user of that server"
            )
        return TrackingAccessError(
            f"the tracking server {uri} refused the login of user {user!r}: check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if code == "PERMISSION_DENIED":
        return TrackingAccessError(
            f"user {user!r} may not {action} on the tracking server {uri}: ask an admin of that "
            "server for EDIT permission"
        )
    return None


@contextlib.contextmanager
def access_checked(action: str) -> Iterator[None]:
    """Re-raise a tracking server's 401 or 403 inside the block as a TrackingAccessError."""
    try:
        yield
    except mlflow.exceptions.MlflowException as error:
        refused = access_error(error, action)
        if refused is None:
            raise
        raise refused from None


def experiment_id(config: ExperimentConfig) -> str:
    """The MLflow experiment of `config` (created on first use; artifacts beside a local db)."""
    name = config.tracking.experiment or config.name
    client = mlflow.MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    store = _local_store_dir(mlflow.get_tracking_uri())
    location = (store / "artifacts").resolve().as_uri() if store is not None else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException as error:
        if access_error(error) is not None:
            raise
        # Another process created it between our lookup and create.
        return client.get_experiment_by_name(name).experiment_id


def base_tags(config: ExperimentConfig, stage: str) -> dict[str, str]:
    """Tags every run carries: stage, architecture, dataset, git commit, config hash."""
    return {
        "stage": stage,
        "architecture": config.architecture,
        "dataset": config.data.name,
        "git_commit": git_commit(),
        "config_hash": config.section_hash(),
        "experiment": config.name,
    }


@contextlib.contextmanager
def stage_run(
    config: ExperimentConfig,
    stage: str,
    tags: dict[str, str] | None = None,
    resume_run_id: str | None = None,
    run_name: str | None = None,
) -> Iterator[Run]:
    """Open the MLflow run of one stage (nested under an active pipeline run, if any), named
    `run_name` (default: the experiment for a pipeline run, `<experiment>/<stage>` for others).

    An exception marks the run FAILED with the reason as a tag and the traceback as an
    artifact; Ctrl-C and SIGTERM mark it KILLED. The exception is re-raised either way.
    `resume_run_id` reopens an earlier run of this stage instead of starting a new one.
    """
    if resume_run_id is not None:
        with access_checked(f"resume run {resume_run_id}"):
            run = mlflow.start_run(run_id=resume_run_id)
        yield from _closing(run, config)
        return
    parent = mlflow.active_run()
    run_name = run_name or (config.name if stage == "pipeline" else f"{config.name}/{stage}")
    all_tags = base_tags(config, stage)
    if parent is not None:
        # A stage's parent is its pipeline run (or a tune run); a pipeline's, a sweep or tune run.
        parent_stage = parent.data.tags.get("stage") or ("sweep" if stage == "pipeline" else "pipeline")
        all_tags[f"{parent_stage}_run_id"] = parent.info.run_id
    all_tags.update(tags or {})
    with access_checked(f"start runs in experiment {config.tracking.experiment or config.name!r}"):
        run = mlflow.start_run(
            experiment_id=experiment_id(config),
            run_name=run_name,
            nested=parent is not None,
            tags=all_tags,
        )
    yield from _closing(run, config)


def shared_run_id(config: ExperimentConfig, stage: str, identity: dict[str, str]) -> str:
    """The run of `stage` that carries the `identity` tags (any status), created when there is
    none: processes that start together each create one, see all of them, keep the oldest and
    delete their own, so they all log under one run."""
    client = mlflow.MlflowClient()
    experiment = experiment_id(config)
    tags = {"stage": stage, **identity}

    def candidates() -> list[Run]:
        runs = mlflow.search_runs(
            experiment_ids=[experiment],
            filter_string=_tag_filter(tags),
            max_results=100,
            output_format="list",
        )
        return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))

    existing = candidates()
    if existing:
        return existing[0].info.run_id
    with access_checked(f"start runs in experiment {config.tracking.experiment or config.name!r}"):
        created = client.create_run(
            experiment, run_name=f"{config.name}/{stage}", tags={**base_tags(config, stage), **identity}
        )
    oldest = candidates()[0].info.run_id
    if oldest != created.info.run_id:
        client.delete_run(created.info.run_id)
    return oldest


def end_abandoned_runs(config: ExperimentConfig, tags: dict[str, str], reason: str) -> list[str]:
    """End KILLED, with `reason`, the RUNNING runs carrying `tags` and the RUNNING stage runs
    nested under them: what a process killed with SIGKILL left open. Returns their ids."""
    client = mlflow.MlflowClient()
    experiment = experiment_id(config)

    def running(conditions: dict[str, str]) -> list[Run]:
        return mlflow.search_runs(
            experiment_ids=[experiment],
            filter_string=_tag_filter(conditions, status="RUNNING"),
            output_format="list",
        )

    ended = []
    for run in running(tags):
        for abandoned in [*running({"pipeline_run_id": run.info.run_id}), run]:
            client.set_tag(abandoned.info.run_id, "error", reason[:5000])
            client.set_terminated(abandoned.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            ended.append(abandoned.info.run_id)
    return ended


def end_runs_above(run: Run) -> None:
    """Make `run` the active run again, ending the runs nested under it FAILED (after a failure
    left them open)."""
    while (active := mlflow.active_run()) is not None and active.info.run_id != run.info.run_id:
        mlflow.end_run("FAILED")


def study_storage_uri(explicit: str | None = None) -> str:
    """Where Optuna studies live: `explicit`, else DEEPARCH_TUNE_STORAGE, else `optuna.db` beside
    the local sqlite store (`mlruns/`)."""
    chosen = explicit or os.environ.get(TUNE_STORAGE_VARIABLE)
    if chosen:
        return chosen
    store = _local_store_dir(mlflow.get_tracking_uri()) or LOCAL_STORE_DIR
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store.resolve() / 'optuna.db'}"


def masked_uri(uri: str) -> str:
    """A database URI with its password hidden."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(uri).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return uri


def artifact_file(run: Run, path: str) -> str:
    """Where a run's artifact can be read: its local file path for a local store, else its URI."""
    uri = f"{run.info.artifact_uri.rstrip('/')}/{path}"
    return uri.removeprefix("file://") if uri.startswith("file:///") else uri


def _closing(run: Run, config: ExperimentConfig) -> Iterator[Run]:
    """Yield the open run; end it FINISHED, FAILED or KILLED by how the block ends."""
    try:
        mlflow.log_text(config.to_yaml(), CONFIG_ARTIFACT)
        yield run
    except KeyboardInterrupt as interruption:
        _end_with(run, RunStatus.KILLED, str(interruption) or "interrupted (Ctrl-C)")
        raise
    except BaseException as error:
        _end_with(run, RunStatus.FAILED, f"{type(error).__name__}: {error}")
        raise
    else:
        mlflow.flush_async_logging()
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def _end_with(run: Run, status: int, reason: str) -> None:
    """Record why a run stopped, then close it with `status`."""
    with contextlib.suppress(Exception):
        mlflow.flush_async_logging()
        mlflow.set_tag("error", reason[:5000])
        mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
    mlflow.end_run(RunStatus.to_string(status))


def log_params(params: dict[str, Any]) -> None:
    """Log params; a value longer than MLflow accepts keeps its start plus a hash of the whole.

    The full resolved config is always the run's `config.yaml` artifact.
    """
    mlflow.log_params({key: param_value(value) for key, value in params.items()})


def log_figure(figure: Any, artifact_file: str) -> None:
    """Log a matplotlib figure, or a Pillow image (`plots` tiles image grids with Pillow), as a
    PNG artifact of the active run.

    zlib level 1 instead of Pillow's 6: a figure of 32 photos encodes in about half the time
    (0.16 s against 0.32 s here) for a file about 15% larger.
    """
    if hasattr(figure, "savefig"):
        mlflow.log_figure(figure, artifact_file, save_kwargs={"pil_kwargs": {"compress_level": 1}})
        return
    folder, name = os.path.split(artifact_file)
    with tempfile.TemporaryDirectory(prefix="deeparch-") as scratch:
        figure.save(Path(scratch) / name, format="png", compress_level=1)
        mlflow.log_artifact(str(Path(scratch) / name), artifact_path=folder or None)


def log_stepped_image(figure: Any, key: str, step: int) -> None:
    """Log a Pillow image, or a matplotlib figure, as the MLflow image `key` at `step`: the run's
    page shows one slider per key to step through them."""
    if hasattr(figure, "savefig"):
        import io

        from PIL import Image

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        buffer.seek(0)
        figure = Image.open(buffer).convert("RGB")
    mlflow.log_image(figure, key=key, step=step)


def param_value(value: Any, limit: int = PARAM_VALUE_LIMIT) -> str:
    """`str(value)`, or its first characters and `...[sha256:<12 hex>]` when too long."""
    import hashlib

    text = str(value)
    if len(text) <= limit:
        return text
    suffix = f"...[sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}]"
    return text[: limit - len(suffix)] + suffix


# How MLflow names may not be written (`<=50K`), and what they are written as instead.
_NAME_WORDS = (("<=", "le"), (">=", "ge"), ("!=", "ne"), ("<", "lt"), (">", "gt"), ("=", "eq"))
_NAME_CHARACTER = re.compile(r"[^\w.\- ]")


def safe_names(texts: list[str]) -> dict[str, str]:
    """Each text (a class name, say) as a part of an MLflow metric, param or artifact name, distinct:
    comparison signs become words (`<=50K` -> `le50K`), other characters MLflow refuses `_`. The
    exact texts stay in JSON artifacts, plots and the served model's output."""
    names: dict[str, str] = {}
    for text in texts:
        name = str(text)
        for sign, word in _NAME_WORDS:
            name = name.replace(sign, word)
        name = _NAME_CHARACTER.sub("_", name).strip() or "_"
        if set(name) == {"."}:
            name = "_" * len(name)
        base, number = name, 2
        while name in names.values():
            name, number = f"{base}_{number}", number + 1
        names[text] = name
    return names


@contextlib.contextmanager
def _without_keras_progress_bars() -> Iterator[None]:
    """Keras' interactive logging off inside the block: MLflow predicts on a model's input example
    (for the signature, then to check serving) with Keras' default progress bar; without
    interactive logging Keras sends those bars to absl instead."""
    import keras

    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if interactive:
            keras.config.enable_interactive_logging()


def log_keras_model(model: keras.Model, input_example: Any) -> str:
    """Log a Keras model with signature and input example to the active run; return its URI.

    The signature is inferred from one direct call of the model on the example. Given only the
    example, MLflow infers it by wrapping the model as a pyfunc and predicting, which traces a
    prediction function (1.5 s of a 4.5 s tiny text run here); the logged signature is the same.
    """
    import numpy as np
    from mlflow.models import infer_signature

    from pipelines.serving import model_inputs

    outputs = np.asarray(model(model_inputs(model, input_example), training=False))
    with _without_keras_progress_bars():
        info = mlflow.models.Model.log(
            artifact_path=None,
            name=MODEL_NAME,
            flavor=_WithoutServingCheck(mlflow.tensorflow),
            model=model,
            input_example=input_example,
            signature=infer_signature(input_example, outputs),
            pip_requirements=_pinned_requirements(),
            validate_serving_input=False,
        )
    return info.model_uri


class _WithoutServingCheck:
    """An MLflow flavor module (`mlflow.tensorflow`, `mlflow.pyfunc`) for `Model.log`, which then
    skips its serving-input check: the check loads the model it has just written back as a Python
    model and predicts the input example, only to log a warning if that fails, and cost 0.6 s of
    each tiny train run (a tenth) here. What it would warn of is tested instead: the logged models
    load with `mlflow.pyfunc.load_model` and predict, and `mlflow models serve` answers
    (tests/test_server.py, tests/test_tables.py). `Model.log` takes the check's switch,
    `validate_serving_input`, with the flavor's arguments, and the flavors' own `log_model` take
    no such argument: this drops it on the way to the flavor's `save_model`."""

    def __init__(self, flavor: Any) -> None:
        self.flavor = flavor
        self.__name__ = flavor.__name__

    def save_model(self, validate_serving_input: bool = True, **kwargs: Any) -> None:
        self.flavor.save_model(**kwargs)


def log_table_model(model: keras.Model, model_config: dict[str, Any], input_example: Any) -> str:
    """Log a table's Keras model inside `pipelines/table_serving.py`'s Python model, which takes raw
    rows (a DataFrame) and answers class names; its signature lists every column (`input_schema`)
    and every output. Return its URI."""
    from mlflow.models import ModelSignature, infer_signature

    from pipelines import table_serving

    served = table_serving.TableModel().configure(model_config, model)
    outputs = infer_signature(model_output=served.predict(None, input_example)).outputs
    signature = ModelSignature(inputs=served.input_schema(), outputs=outputs)
    with tempfile.TemporaryDirectory(prefix="deeparch-") as scratch:
        saved = Path(scratch) / "model.keras"
        model.save(saved)
        # MLflow checks the input example by loading the logged model: its notice and its download
        # progress bar are not the user's news.
        quiet = _environment(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
        with _without_keras_progress_bars(), _quieter("mlflow.pyfunc"), quiet:
            info = mlflow.models.Model.log(
                artifact_path=None,
                name=MODEL_NAME,
                flavor=_WithoutServingCheck(mlflow.pyfunc),
                validate_serving_input=False,
                python_model=table_serving.__file__,
                artifacts={"keras_model": str(saved)},
                model_config=model_config,
                signature=signature,
                input_example=input_example,
                pip_requirements=[*_pinned_requirements(), f"pandas=={metadata.version('pandas')}"],
            )
    return info.model_uri


def load_keras_model(model_uri: str) -> keras.Model:
    """The Keras model behind an MLflow model URI (`models:/...` or `runs:/...`): the TensorFlow
    flavour's, or the one inside a table's Python model."""
    if "tensorflow" in mlflow.models.get_model_info(model_uri).flavors:
        return mlflow.tensorflow.load_model(model_uri)
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().keras_model


def checkpoint_dir(run_id: str) -> Path:
    """Where a train run keeps its per-epoch checkpoint: beside a local store, else in a temp dir."""
    store = _local_store_dir(mlflow.get_tracking_uri())
    root = (
        store / "checkpoints" if store is not None else Path(tempfile.gettempdir()) / "deeparch-checkpoints"
    )
    return root / run_id


def logged_steps(run_id: str, metric: str) -> set[int]:
    """Steps at which `metric` was already logged in a run."""
    return {entry.step for entry in mlflow.MlflowClient().get_metric_history(run_id, metric)}


def metric_histories(run_id: str, metrics: list[str]) -> dict[str, list[float]]:
    """Each metric's values in step order, as Keras' `History.history` holds them."""
    client = mlflow.MlflowClient()
    return {
        name: [entry.value for entry in sorted(client.get_metric_history(run_id, name), key=lambda e: e.step)]
        for name in metrics
    }


def newest_run(experiment_id: str, tags: dict[str, str], finished: bool = True) -> Run | None:
    """The newest run of an experiment carrying all `tags` (only FINISHED ones unless told), or None."""
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=_tag_filter(tags, status="FINISHED" if finished else None),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def _tag_filter(tags: dict[str, str], status: str | None = None) -> str:
    """An MLflow search filter for runs carrying every one of `tags` (and in `status`, if given)."""
    conditions = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    if status is not None:
        conditions.append(f"attributes.status = '{status}'")
    return " and ".join(conditions)


def get_run(run_id: str) -> Run:
    """A run by id, with a user-facing error when it does not exist."""
    try:
        return mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ConfigError(
            f"run {run_id!r} does not exist in the tracking store {mlflow.get_tracking_uri()}"
        ) from None


def train_run_model_uri(run: Run) -> str:
    """The URI of the model a finished train run logged."""
    if run.data.tags.get("stage") != "train":
        raise ConfigError(
            f"run {run.info.run_id!r} is a {run.data.tags.get('stage', 'non-deeparch')!r} run; "
            "give the id of a train run"
        )
    if run.info.status != "FINISHED":
        raise ConfigError(f"train run {run.info.run_id!r} is {run.info.status}, not FINISHED")
    uri = run.data.tags.get("model_uri")
    if not uri:
        raise ConfigError(f"train run {run.info.run_id!r} has no logged model")
    return uri


def run_config(run: Run) -> ExperimentConfig:
    """The resolved config a run logged as its `config.yaml` artifact."""
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path=CONFIG_ARTIFACT, dst_path=folder
        )
        raw = load_yaml(Path(path).read_text())
    return resolve(raw, source=f"run {run.info.run_id}")


def run_url(run: Run, ui_base: str | None = None) -> str:
    """Link to the run in the MLflow UI (the local `deeparch ui` address by default)."""
    base = ui_base or ui_base_url()
    return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"


def experiment_url(experiment: str, ui_base: str | None = None) -> str:
    """Link to an experiment's training-runs table (MLflow 3 otherwise opens a GenAI page)."""
    base = ui_base or ui_base_url()
    return f"{base}/#/experiments/{experiment}/runs"


def compare_experiments_url(
    experiments: list[str], stage: str = "pipeline", ui_base: str | None = None
) -> str:
    """Link to the UI's cross-experiment runs table of `experiments`, showing only runs tagged
    `stage` (the pipeline runs, whose rows carry each run's config params and headline metrics)."""
    base = ui_base or ui_base_url()
    ids = quote(json.dumps(sorted(experiments), separators=(",", ":")), safe="")
    search = quote(f'tags.stage = "{stage}"', safe="")
    return f"{base}/#/compare-experiments/s?experiments={ids}&searchFilter={search}"


def ui_base_url() -> str:
    """Where the UI for the current store lives: the tracking server, or a local `deeparch ui`."""
    uri = mlflow.get_tracking_uri()
    if is_tracking_server(uri):
        return uri.rstrip("/")
    return f"http://127.0.0.1:{DEFAULT_UI_PORT}"


def is_tracking_server(uri: str | None = None) -> bool:
    """Whether the store (the current one by default) is an MLflow tracking server."""
    return (uri or mlflow.get_tracking_uri()).startswith(("http://", "https://"))


def ui_command(uri: str | None = None) -> list[str]:
    """The `mlflow ui` command line that opens a local store, bound to 127.0.0.1."""
    uri = uri or tracking_uri()
    command = ["mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
    store = _local_store_dir(uri)
    if store is not None:
        command += ["--default-artifact-root", (store / "artifacts").resolve().as_uri()]
    return command + ["--port", str(DEFAULT_UI_PORT)]


@contextlib.contextmanager
def temporary_artifact_dir() -> Iterator[Path]:
    """A scratch folder for files that are logged and then dropped."""
    with tempfile.TemporaryDirectory(prefix="deeparch-") as folder:
        yield Path(folder)


@functools.cache
def git_commit() -> str:
    """The commit of the working directory's git repository, or 'unknown'."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextlib.contextmanager
def _quieter(logger_name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise a logger's level inside the block (MLflow's INFO notices are not the user's news)."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """Set environment variables inside the block, restoring what was there."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _local_store_dir(uri: str) -> Path | None:
    """The folder of a local sqlite store, None for a server or another database."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :]).parent


def _pinned_requirements() -> list[str]:
    pins = []
    for name in _MODEL_REQUIREMENTS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{name}=={metadata.version(name)}")
    return pins
