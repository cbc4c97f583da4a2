"""Train: build the model, fit it with MLflow logging, log curves, summary and the model."""

from __future__ import annotations

import dataclasses
import io
import math
import sys
import time
from collections.abc import Sequence

import keras
import mlflow

import models
from models.spec import DataSpec
from pipelines import distribute, plots, tracking
from pipelines.callbacks import (
    CheckpointEvery,
    EpochLine,
    GeneratedSamplesLogger,
    GradientFlowProbe,
    MlflowEpochLogger,
)
from pipelines.config import (
    AUDIO_ARCHITECTURES,
    TEXT_ARCHITECTURES,
    BuilderConfig,
    ConfigError,
    ExperimentConfig,
    TrainConfig,
)
from pipelines.data import (
    PreparedDataset,
    as_tf_dataset,
    is_cached,
    reads_own_files,
    shuffle_buffer_examples,
)
from pipelines.serving import example_inputs, raw_rows, servable, table_model_config
from pipelines.stages.results import PrepareResult, TrainResult

INPUT_EXAMPLE_SIZE = 4
# XLA draws random numbers with its default algorithm, which on a CPU is slow: a cnn-mnist1d epoch
# with dropout 0.1 took 7.8 s with XLA and 0.5 s without (README, "XLA and random layers").
XLA_OFF_REASON = "XLA is off on a CPU for a model whose layers draw random numbers in training"
# Training examples on which GradientFlowProbe measures ∂loss/∂h_t, the same ones at every probe.
GRADIENT_PROBE_SIZE = 256
RECURRENT_ARCHITECTURES = ("rnn", "lstm")
TABLE_ARCHITECTURES = ("mlp",)  # the models that read a table's named columns
LOSS_METRIC = {False: "loss", True: "d_loss"}  # by whether the model is a GAN


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def train_stage(
    config: ExperimentConfig,
    prepared: PrepareResult,
    resume_run_id: str | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Fit the configured architecture on the prepared data inside a `train` run.

    Training is checkpointed after the first epoch, then every `train.checkpoint_seconds`
    (`CheckpointEvery`); `resume_run_id` reopens a train run that was killed and continues from
    its last checkpointed epoch, in the same MLflow run. `extra_callbacks` join the stage's own (a
    tuning trial's pruning); one that stops training early leaves the run tagged `stopped_epoch`.
    """
    dataset = prepared.dataset
    keras.utils.set_random_seed(config.seed)
    generative = config.architecture == "gan"
    # A GAN learns the inputs' distribution; the labels only condition it.
    spec = dataclasses.replace(dataset.spec, task="generation") if generative else dataset.spec
    check_config_fits_data(config, dataset)
    train_split, validation_split = dataset.splits["train"], dataset.splits["validation"]
    _warn_if_stored_by_class(config, dataset)
    batch_size = config.train.batch_size  # global: tf.distribute splits it across replicas
    steps_per_epoch = math.ceil(len(train_split) / batch_size)
    epochs = config.train.planned_epochs(steps_per_epoch)
    strategy = distribute.strategy(config.train.strategy)
    workers = distribute.worker_count(config.train.strategy)
    # Learnt from the train split (a text vocabulary, audio statistics): a refit model gets the same.
    learnt = data_hparams(config, dataset)
    with strategy.scope():
        model = build_model(config, spec, **learnt)
        xla_blocked_by = []
        if generative:
            model.compile()  # each network's Adam optimizer comes from the model config
        else:
            xla_blocked_by = compile_model(model, config.train, spec.task, steps_per_epoch)
    distribute.prepare_for_fit(model, strategy)
    if xla_blocked_by:
        print(f"note: train.jit_compile: {XLA_OFF_REASON} ({', '.join(xla_blocked_by)})")
    if epochs < config.train.epochs:
        print(
            f"note: train.max_updates={config.train.max_updates}: {epochs} epochs of "
            f"{steps_per_epoch} batches, not train.epochs={config.train.epochs}"
        )

    tags = {
        "prepare_run_id": prepared.run_id,
        "dataset_digest": dataset.digest,
        "data_hash": config.section_hash("data"),
        **({"xla_off": XLA_OFF_REASON} if xla_blocked_by else {}),
        **({"planned_epochs": str(epochs)} if epochs < config.train.epochs else {}),
    }
    with tracking.stage_run(config, "train", tags, resume_run_id=resume_run_id) as run:
        if resume_run_id is None:
            tracking.log_params(
                {
                    **config.flat_params(),
                    "parameter_count": model.count_params(),
                    "replicas": distribute.strategy(config.train.strategy).num_replicas_in_sync,
                    "input_sharding": _input_sharding(train_split, workers),
                    "prepare_run_id": prepared.run_id,
                    # The per-step decay AdamW used (the refit's, over more batches, is smaller).
                    **(
                        {"weight_decay_per_step": config.train.decay_per_step(steps_per_epoch)}
                        if config.train.weight_decay_per_epoch is not None
                        else {}
                    ),
                }
            )
            mlflow.log_text(model_summary(model), "model_summary.txt")
        logged_steps = (
            tracking.logged_steps(run.info.run_id, LOSS_METRIC[generative]) if resume_run_id else set()
        )
        logger = MlflowEpochLogger(samples_per_epoch=len(train_split), logged_steps=logged_steps)
        callbacks = [keras.callbacks.TerminateOnNaN(), logger]
        best = _best_epoch_keeper(config.train, spec.task, steps_per_epoch)
        if best is not None:
            callbacks.append(best)
        callbacks += extra_callbacks
        # A progress bar where a person watches a terminal; one line per epoch anywhere else.
        interactive = sys.stdout.isatty()
        if not interactive:
            callbacks.append(EpochLine())
        if generative and config.train.sample_every:
            callbacks.append(
                GeneratedSamplesLogger(config.train.sample_every, dataset.class_names, seed=config.seed)
            )
        if config.train.gradient_probe_epochs:
            probe = dataset.arrays("train", GRADIENT_PROBE_SIZE)
            callbacks.append(GradientFlowProbe(probe.x, probe.y, config.train.gradient_probe_epochs))
        # Last, so that an epoch's metrics are written before its checkpoint.
        callbacks.append(
            CheckpointEvery(
                str(tracking.checkpoint_dir(run.info.run_id)),
                seconds=config.train.checkpoint_seconds,
                before_save=logger.flush,
            )
        )
        started = time.perf_counter()
        train_batches = _training_batches(train_split, config, workers)
        with strategy.scope():
            build_training_state(model, train_batches.element_spec)
            history = model.fit(
                train_batches,
                validation_data=as_tf_dataset(
                    validation_split, batch_size, cache=config.data.cache, workers=workers
                ),
                epochs=epochs,
                callbacks=callbacks,
                # A dataset each worker reads only part of repeats: the epoch is counted in steps.
                steps_per_epoch=steps_per_epoch if reads_own_files(train_split, workers) else None,
                shuffle=False,  # the tf.data pipeline shuffles, seeded
                verbose=1 if interactive else 0,
            ).history
        seconds = time.perf_counter() - started
        _check_finite(history, ("d_loss", "g_loss") if generative else ("loss",))
        if resume_run_id is not None:
            history = tracking.metric_histories(run.info.run_id, list(history))
        trained_epochs = len(history[LOSS_METRIC[generative]])
        # Stopped by its own patience, a training is what its config asks for; by another callback
        # (a tuning trial's pruner) it is not.
        patient = best is not None and best.stopped_epoch > 0
        stopped_epoch = trained_epochs if trained_epochs < epochs and not patient else None
        if stopped_epoch is not None:
            mlflow.set_tag("stopped_epoch", str(stopped_epoch))
        if patient:
            mlflow.set_tag("early_stopped_epoch", str(trained_epochs))
            print(
                f"note: train.patience: stopped after epoch {trained_epochs} of at most "
                f"{epochs}, {best.patience} epochs without a better {best.monitor}"
            )
        # Not across workers, as check_config_fits_data says for train.refit: true.
        multi_worker = config.train.strategy == "multi_worker"
        if config.train.refits(len(train_split)) and not generative and not multi_worker:
            refit_epochs = (
                best.best_epoch + 1 if best is not None and best.best_epoch is not None else trained_epochs
            )
            started = time.perf_counter()
            model = _refit(config, spec, dataset, learnt, refit_epochs, strategy)
            mlflow.set_tag("refit_epochs", str(refit_epochs))
            mlflow.log_metric("refit_seconds", time.perf_counter() - started)
            print(
                f"note: train.refit: trained a fresh model on the train and validation splits "
                f"({len(train_split) + len(validation_split):,} examples) for {refit_epochs} epochs"
            )
        mlflow.log_metrics(
            {
                "train_seconds": seconds,
                "samples_per_second_mean": sum(logger.throughputs) / len(logger.throughputs),
                # 1-based, as the logged epochs' steps; the weights of that epoch were restored.
                **(
                    {"best_epoch": best.best_epoch + 1}
                    if best is not None and best.best_weights is not None
                    else {}
                ),
            }
        )
        tracking.log_figure(plots.learning_curves(history), "learning_curves.png")
        served = servable(model)
        if dataset.spec.is_table:
            # Raw rows in, class names out: a DataFrame as the user's file holds it.
            rows = raw_rows(dataset.spec, dataset.arrays("test", INPUT_EXAMPLE_SIZE).x)
            model_uri = tracking.log_table_model(served, table_model_config(dataset, config.data), rows)
        else:
            model_uri = tracking.log_keras_model(served, example_inputs(served, dataset, INPUT_EXAMPLE_SIZE))
        mlflow.set_tag("model_uri", model_uri)
    return TrainResult(
        run_id=run.info.run_id, model_uri=model_uri, model=model, history=history, stopped_epoch=stopped_epoch
    )


def _refit(
    config: ExperimentConfig, spec: DataSpec, dataset: PreparedDataset, learnt: dict, epochs: int, strategy
) -> keras.Model:
    """A fresh model, built and compiled as the first (with what was `learnt` from the train split
    alone, as the first), trained for `epochs` on the train and validation splits together:
    each epoch draws the batches of both, shuffled, in a seeded random order."""
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    batch_size = config.train.batch_size
    splits = [dataset.splits["train"], dataset.splits["validation"]]
    parts = [_training_batches(split, config) for split in splits]
    steps = [math.ceil(len(split) / batch_size) for split in splits]
    # Both splits' batches in a seeded random order; the count stated, so that Keras knows the
    # length of an epoch (a sampled dataset's is unknown).
    batches = tf.data.Dataset.sample_from_datasets(
        parts, weights=[count / sum(steps) for count in steps], seed=config.seed
    ).apply(tf.data.experimental.assert_cardinality(sum(steps)))
    train = config.train.model_copy(update={"epochs": epochs, "max_updates": None})
    with strategy.scope():
        model = build_model(config, spec, **learnt)
        compile_model(model, train, spec.task, sum(steps))
        build_training_state(model, batches.element_spec)
        history = model.fit(batches, epochs=epochs, shuffle=False, verbose=0).history
    _check_finite(history, ("loss",))
    if len(history["loss"]) != epochs:  # Keras stops early, with a warning, when the data runs out
        raise RuntimeError(f"train.refit trained {len(history['loss'])} of {epochs} epochs")
    return model


def _training_batches(split, config: ExperimentConfig, workers: int = 1):
    """A split's batches as a model trains on them: shuffled with the run's seed, augmented as
    `train` says."""
    return as_tf_dataset(
        split,
        config.train.batch_size,
        shuffle=True,
        seed=config.seed,
        train=config.train,
        cache=config.data.cache,
        workers=workers,
    )


def build_training_state(model: keras.Model, batch_spec) -> None:
    """Create the variables a first training step would (the optimizer's slots, the compiled loss's
    and metrics' state) from the shapes of a batch (`batch_spec`: a dataset's element_spec), before
    `fit`.

    Keras 3 does this itself under a tf.distribute strategy (its `_symbolic_build`, private, used
    here as it uses it: nothing is computed, shapes only). Under the default strategy it leaves
    them to the first trace of the train step, and TensorFlow traces a function that created
    variables a second time, so every training traced its step twice: about 2.5 s of a 12 s tiny
    text run here. Nothing to do for a model already built (a resumed one); the GAN builds its two
    optimizers when compiled.
    """
    model._symbolic_build(data_batch=batch_spec)


def _best_epoch_keeper(
    train: TrainConfig, task: str, steps_per_epoch: int
) -> keras.callbacks.EarlyStopping | None:
    """Keras' EarlyStopping on the validation metric of `train.restore_best` (val_loss when none):
    it keeps the best epoch's weights and puts them back when training ends (unless restore_best is
    none), and stops after `train.patience` epochs without improvement (more for an epoch of few
    batches, `train.patience_min_updates`; never when None). A resumed training keeps the best of
    the epochs it ran itself."""
    if train.restore_best == "none" and train.patience is None:
        return None
    return keras.callbacks.EarlyStopping(
        monitor=monitored_metric(train.restore_best, task),
        patience=train.patience_epochs(steps_per_epoch) or train.epochs + 1,
        restore_best_weights=train.restore_best != "none",
        verbose=0,
    )


def monitored_metric(restore_best: str, task: str) -> str:
    """The validation metric `train.restore_best` and `train.patience` watch: `auto` is the score a
    classifier is judged by (its accuracy keeps rising after its loss, which overconfidence on a
    few rows turns upwards, has bottomed out), the loss for any other task; `none` the loss."""
    if restore_best == "auto":
        return "val_accuracy" if task == "classification" else "val_loss"
    return "val_loss" if restore_best == "none" else restore_best


def _warn_if_stored_by_class(config: ExperimentConfig, dataset: PreparedDataset) -> None:
    """Say so when a training split too big to cache is stored class by class: its bounded
    shuffle buffer would give batches of few classes."""
    train = dataset.splits["train"]
    if is_cached(train, config.data.cache) or not train.stored_by_class(dataset.class_counts("train")):
        return
    print(
        f"note: the train split of {dataset.name!r} is stored mostly class by class and streams "
        f"(too big for data.cache auto), shuffled within {shuffle_buffer_examples(train):,} examples; "
        "shuffle the rows of your file, or set data.cache=memory if it fits, for batches of mixed classes"
    )


def _input_sharding(split, workers: int) -> str:
    """How the training split is divided between processes: none, by shard file, or by batch."""
    if workers == 1:
        return "none"
    return "file" if reads_own_files(split, workers) else "data"


def build_model(config: ExperimentConfig, spec: DataSpec, **data_arguments) -> keras.Model:
    """The configured model, uncompiled; a custom builder that raises or returns something else
    than a keras.Model is a ConfigError naming model.builder."""
    custom = isinstance(config.model, BuilderConfig)
    try:
        model = models.build(
            config.architecture, spec, config.builder_folder, **config.hparams(), **data_arguments
        )
    except Exception as error:
        if not custom:
            raise
        raise ConfigError(
            f"model.builder: {config.architecture!r} raised {type(error).__name__}: {error}; "
            "check model.params and what the builder does with the DataSpec"
        ) from error
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"model.builder: {config.architecture!r} returned a {type(model).__name__}, not a keras.Model; "
            "allowed: a builder that returns an uncompiled keras.Model"
        )
    return model


def check_model_builds(config: ExperimentConfig, dataset: PreparedDataset) -> None:
    """Build a custom builder's model once, before any run exists, so that a builder that fails is
    refused up front (the built-in families are known to build)."""
    if isinstance(config.model, BuilderConfig):
        build_model(config, dataset.spec)


def check_config_fits_data(config: ExperimentConfig, dataset: PreparedDataset) -> None:
    """Refuse, before any training, an architecture or probe that cannot read this dataset."""
    architecture = config.architecture
    # A custom builder reads the DataSpec and decides for itself what it can read.
    known = not isinstance(config.model, BuilderConfig)
    if known and dataset.spec.is_table and architecture not in TABLE_ARCHITECTURES:
        raise ConfigError(
            f"model.architecture: {architecture!r} cannot read the table of dataset {dataset.name!r} "
            f"(columns of numbers and categories); allowed for tables: {', '.join(TABLE_ARCHITECTURES)}"
        )
    if known and dataset.spec.input_dtype == "string" and architecture not in TEXT_ARCHITECTURES:
        raise ConfigError(
            f"model.architecture: {architecture!r} cannot read the text of dataset {dataset.name!r}; "
            f"allowed for text: {', '.join(TEXT_ARCHITECTURES)}"
        )
    if known and dataset.spec.is_audio and architecture not in AUDIO_ARCHITECTURES:
        raise ConfigError(
            f"model.architecture: {architecture!r} cannot read the audio of dataset {dataset.name!r}; "
            f"allowed for audio: {', '.join(AUDIO_ARCHITECTURES)}"
        )
    if known and dataset.spec.task == "classification" and (dataset.spec.num_classes or 0) < 2:
        _check_unlabelled_fits(config, dataset)
    restore = config.train.restore_best
    if architecture == "gan" and config.train.patience is not None:
        raise ConfigError(
            f"train.patience: {config.train.patience} stops on a validation loss, which {architecture!r} "
            "does not have; allowed: null"
        )
    if restore != "none" and (
        architecture == "gan" or (restore == "val_accuracy" and dataset.spec.task != "classification")
    ):
        raise ConfigError(
            f"train.restore_best: {restore!r} is not a validation metric of {architecture!r} on "
            f"{dataset.name!r}; allowed: none" + (", auto, val_loss" if architecture != "gan" else "")
        )
    if config.train.refit is True and (architecture == "gan" or config.train.strategy == "multi_worker"):
        raise ConfigError(
            "train.refit: true trains again on the validation split, which "
            + (
                f"{architecture!r} does not learn from"
                if architecture == "gan"
                else "train.strategy multi_worker does not read"
            )
            + "; allowed: false"
        )
    smoothing = config.train.label_smoothing
    if smoothing and (architecture == "gan" or dataset.spec.task != "classification"):
        raise ConfigError(
            f"train.label_smoothing: {smoothing} smooths class labels, which {architecture!r} on "
            f"{dataset.name!r} does not learn; allowed: 0"
            + (" (a GAN's discriminator smooths with model.label_smoothing)" if architecture == "gan" else "")
        )
    probe_epochs = config.train.gradient_probe_epochs
    if probe_epochs and (architecture not in RECURRENT_ARCHITECTURES or dataset.spec.input_dtype == "string"):
        raise ConfigError(
            f"train.gradient_probe_epochs: {probe_epochs} needs a recurrent model on numeric sequences, "
            f"not {architecture!r} on {dataset.name!r}; allowed: [] here, or "
            f"{' / '.join(RECURRENT_ARCHITECTURES)} on a numeric dataset"
        )
    augment = config.train.augment_shift or config.train.augment_scale
    # Shifting a table's columns around would mix unrelated features; text has no amplitude.
    # A forecast's windows must keep their time order (the config layer already drops or refuses
    # this; here for configs built in code).
    unaugmentable = (
        "a forecast's time-ordered windows"
        if dataset.forecast
        else "text"
        if dataset.spec.input_dtype == "string"
        else "a table of CSV features"
        if dataset.source == "csv"
        else None
    )
    if augment and unaugmentable:
        raise ConfigError(
            f"train.augment_shift/augment_scale: {config.train.augment_shift}/{config.train.augment_scale} "
            f"augment numeric sequences and images, but {dataset.name!r} is {unaugmentable}; allowed: "
            "train.augment_shift=0 train.augment_scale=0"
        )


def _check_unlabelled_fits(config: ExperimentConfig, dataset: PreparedDataset) -> None:
    """Data without classes (a folder of pictures without class sub-folders) can only be imitated:
    refuse a classifier, and a GAN told to condition on classes."""
    where = dataset.location or dataset.name
    if config.architecture != "gan":
        raise ConfigError(
            f"data.path: {where!r} has no class sub-folders, so {config.architecture!r} has no classes to "
            "learn; allowed: one sub-folder of pictures per class (at least two), or a GAN that imitates "
            "the pictures (deeparch run -e gan-images)"
        )
    if config.model.conditional is True:
        raise ConfigError(
            f"model.conditional: true needs class labels, but {where!r} has no class sub-folders; "
            "allowed: false or auto"
        )


def data_hparams(config: ExperimentConfig, dataset: PreparedDataset) -> dict:
    """Builder arguments learnt from the data, on the train split's batches as they stream (never
    on the split held whole): for text, its vocabulary; for audio, the configured front end with
    the mean and variance of each log-mel band. A custom builder gets none: it reads the raw data."""
    if isinstance(config.model, BuilderConfig):
        return {}
    if dataset.spec.is_audio:
        from models.audio import AudioFrontEnd, adapt_spectrogram_statistics

        waveforms = as_tf_dataset(dataset.splits["train"], 256, cache="none").map(
            lambda waveform, _: waveform
        )
        front_end = AudioFrontEnd(**config.model.audio_front_end())
        return {"audio": adapt_spectrogram_statistics(waveforms, dataset.spec.sample_rate, front_end)}
    if dataset.spec.input_dtype != "string":
        return {}
    from models.text import adapt_text_vocabulary

    texts = as_tf_dataset(dataset.splits["train"], 1024, cache="none").map(lambda text, _: text)
    return {"vocabulary": adapt_text_vocabulary(texts, config.model.max_tokens)}


def _check_finite(history: dict[str, list[float]], names: tuple[str, ...]) -> None:
    """Raise when a loss is missing or became NaN/inf (TerminateOnNaN only stops the fit)."""
    for name in names:
        values = history.get(name, [])
        if not values or not all(math.isfinite(value) for value in values):
            raise NonFiniteLossError(
                f"training {name} became {values[-1] if values else 'undefined'}; "
                "lower the learning rate or set train.clipnorm"
            )


def compile_model(model: keras.Model, train: TrainConfig, task: str, steps_per_epoch: int) -> list[str]:
    """Compile with the configured optimizer, schedule and the task's loss and metrics; return the
    layers that kept XLA off although `train.jit_compile` asked for it (`XLA_OFF_REASON`)."""
    total_steps = max(1, steps_per_epoch * train.planned_epochs(steps_per_epoch))
    schedule = learning_rate_schedule(train, total_steps)
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(schedule, clipnorm=train.clipnorm),
        "adamw": lambda: keras.optimizers.AdamW(
            schedule, weight_decay=train.decay_per_step(steps_per_epoch), clipnorm=train.clipnorm
        ),
        "sgd": lambda: keras.optimizers.SGD(schedule, momentum=0.9, clipnorm=train.clipnorm),
        "rmsprop": lambda: keras.optimizers.RMSprop(schedule, clipnorm=train.clipnorm),
    }[train.optimizer]()
    if task == "classification":
        loss = (
            SmoothedSparseCategoricalCrossentropy(train.label_smoothing)
            if train.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy()
        )
        metrics = ["accuracy"]
    else:
        loss, metrics = (
            keras.losses.MeanSquaredError(),
            [keras.metrics.MeanAbsoluteError(name="mae")],
        )
    xla_blocked_by = random_layers(model) if train.jit_compile and not _has_gpu() else []
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        jit_compile=train.jit_compile and not xla_blocked_by,
        steps_per_execution=train.steps_per_execution,
    )
    return xla_blocked_by


@keras.saving.register_keras_serializable(package="deeparch")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of class indices against predicted probabilities, the target 1 - smoothing on
    the true class plus smoothing / classes on every class: Keras' sparse loss has no
    label_smoothing, and the labels stay class indices everywhere else."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):  # (batch, 1) as well as (batch,)
            labels = keras.ops.squeeze(labels, axis=-1)
        targets = keras.ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def random_layers(model: keras.Model) -> list[str]:
    """The layers that draw random numbers while training: those holding a Keras seed generator
    (dropout, noise, random augmentation), unless every rate they have is 0 (a recurrent cell
    holds one whether or not it drops anything)."""
    rates = ("rate", "dropout", "recurrent_dropout", "stddev")
    names = []
    for layer in model._flatten_layers(include_self=False):
        if not any(isinstance(value, keras.random.SeedGenerator) for value in vars(layer).values()):
            continue
        values = [getattr(layer, name, None) for name in rates]
        values = [value for value in values if isinstance(value, int | float)]
        if not values or any(value > 0 for value in values):
            names.append(layer.name)
    return names


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def learning_rate_schedule(
    train: TrainConfig, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Constant, or linear warm-up then cosine decay to zero over the whole run."""
    warmup_steps = int(train.warmup_fraction * total_steps)
    if train.schedule == "constant" and warmup_steps == 0:
        return train.learning_rate
    if train.schedule == "constant":
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=1,
            alpha=1.0,
            warmup_target=train.learning_rate,
            warmup_steps=warmup_steps,
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else train.learning_rate,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=train.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def model_summary(model: keras.Model) -> str:
    """The text of `model.summary()`."""
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"))
    return buffer.getvalue()
