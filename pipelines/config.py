"""Typed experiment configuration: YAML files plus dotted `key=value` overrides, validated once.

An experiment file holds one experiment (`name`, `data`, `model`, `train`, ...) or a suite that
lists shipped experiments (`experiments: [mlp-digits, cnn-mnist1d]`) with shared overrides.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

EMBEDDED_DATASETS = ("digits", "mnist1d", "adding", "reviews", "spoken_digits")
# The embedded datasets that hold sequences (spoken_digits: waveforms), not images.
SEQUENCE_DATASETS = ("mnist1d", "adding", "spoken_digits")
TEXT_ARCHITECTURES = ("rnn", "lstm", "cnn")  # the models that read raw strings
AUDIO_ARCHITECTURES = ("rnn", "lstm", "cnn")  # the models with a log-mel front end for waveforms
ACTIVATIONS = Literal["relu", "gelu", "elu", "selu", "swish", "tanh", "sigmoid"]
PositiveInt = Annotated[int, Field(gt=0)]
# Cells a CSV holds for "no value": read as empty in every column but a text column (data.na_values).
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "?", "-", "null", "NULL", "None", "NaN", "nan", "<NA>", "#N/A")
# Names a CSV delimiter may be given by on a command line, where a tab or a pipe is awkward to type.
DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "space": " "}
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class ConfigError(ValueError):
    """Invalid user input in an experiment file or override: one sentence per problem."""


class StrictModel(BaseModel):
    """Rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class DataConfig(StrictModel):
    # `source` and `path` come first: the validators of the fields below read them.
    source: Literal["tfds", "csv", "npz", "images", "text", "audio"] = Field(
        "tfds",
        description="Where the data comes from: TFDS, a CSV file, NumPy arrays (a .npz file or a folder of "
        ".npy files), an image folder, a folder of .txt files or a folder of .wav files.",
    )
    path: str | None = Field(
        None,
        validate_default=True,
        description="The csv/npz file, the folder of .npy files, or the image, text or audio folder (one "
        "sub-folder per class, optionally inside train/, test/ and validation/ folders); not for tfds.",
    )
    name: str | None = Field(
        None,
        validate_default=True,
        description="tfds: embedded dataset (digits, mnist1d, adding, reviews, spoken_digits) or a TFDS "
        "catalog name; other sources: a label for the data, default the file's stem.",
    )
    data_dir: str | None = Field(None, description="TFDS data directory; None uses TFDS' default.")
    validation_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.1, description="Share of the train split held out for validation when none is given."
    )
    max_examples: PositiveInt | None = Field(
        None, description="Cap on examples per split, for quick trials; None keeps all."
    )
    download: bool = Field(True, description="Allow TFDS to download a catalog dataset.")
    sequence_length: Annotated[int, Field(ge=2)] = Field(
        100, description="Sequence length T of the `adding` dataset; other datasets ignore it."
    )
    target: str | None = Field(
        None, validate_default=True, description="csv: the column to predict (label, value or time series)."
    )
    features: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="csv: the feature columns; None takes every other numeric column."
    )
    columns: dict[str, Literal["numeric", "categorical", "text", "ignore"]] | None = Field(
        None,
        description="csv tables: the kind of a column, overriding the one inferred from the file's first "
        "rows (e.g. {zip: categorical, id: ignore}); unnamed columns keep theirs.",
    )
    text_column: str | None = Field(
        None,
        description="csv: the column of text to classify, read as raw strings; auto: the one non-numeric "
        "column besides data.target, if there is exactly one (set for rnn, lstm, cnn); None: that column "
        "only when it is the only one besides data.target, else the numeric features.",
    )
    task: Literal["auto", "classification", "regression", "forecast"] = Field(
        "auto",
        description="csv/npz: auto infers it (integer or text target with few values: classification; "
        "float: regression); forecast: csv time series.",
    )
    time_column: str | None = Field(
        None, description="csv forecast: the column that orders the rows in time; None keeps file order."
    )
    window: PositiveInt = Field(24, description="csv forecast: past values each forecast reads.")
    horizon: PositiveInt = Field(1, description="csv forecast: next values each forecast predicts.")
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = Field(
        [32, 32],
        description="images (and TFDS photos of many sizes): [height, width] every image is resized to.",
    )
    grayscale: bool = Field(False, description="images: read one channel instead of three (RGB).")
    sample_rate: Annotated[int, Field(ge=1000, le=192000)] = Field(
        8000,
        description="audio: samples per second every clip is stored at (other rates are resampled).",
    )
    audio_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = Field(
        1.0,
        description="audio: length of every clip in seconds (longer ones cut at the end, shorter padded).",
    )
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.2, description="csv/npz/images/text/audio: share held out for test when the data has no test split."
    )
    cache: Literal["auto", "memory", "none"] = Field(
        "auto",
        description="Keep prepared splits in memory after the first epoch (memory), stream them from disk "
        "every epoch (none), or keep those up to 256 MB (auto).",
    )
    delimiter: str | None = Field(
        None,
        description="csv: the character between fields (, ; | or tab); None sniffs it from the first rows.",
    )
    encoding: str = Field(
        "utf-8", description="csv: the file's text encoding (utf-8, cp1252, latin-1, utf-16, ...)."
    )
    decimal: Literal[".", ","] = Field(
        ".", description="csv: the decimal mark of numbers (',' for files saved in a European locale)."
    )
    na_values: list[str] = Field(
        list(MISSING_TOKENS),
        description="csv: cell values read as empty (missing) in every column but a text column.",
    )
    on_unreadable: Literal["error", "skip"] = Field(
        "error",
        description="images/text/audio folders: a file that cannot be read stops the run (error), or is "
        "left out, counted, listed in skipped_files.json and tagged on the run (skip).",
    )

    @field_validator("path")
    @classmethod
    def _path_for_own_data(cls, path: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if source not in (None, "tfds") and not path:
            raise ValueError(f"required when data.source is {source!r}; give the file or folder to read")
        return path

    @field_validator("delimiter")
    @classmethod
    def _one_delimiter(cls, delimiter: str | None) -> str | None:
        if delimiter is None:
            return None
        delimiter = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum():
            raise ValueError(
                f"{delimiter!r} is not one field separator; allowed: one character such as , ; | or "
                f"{', '.join(DELIMITER_NAMES)}"
            )
        return delimiter

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        import codecs

        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(
                f"{encoding!r} is not a text encoding Python knows; allowed: e.g. utf-8, cp1252, latin-1, "
                "utf-16"
            ) from None

    @field_validator("delimiter", "encoding", "decimal", "na_values")
    @classmethod
    def _dialect_for_csv(cls, value: Any, info: ValidationInfo) -> Any:
        source = info.data.get("source")
        if source != "csv" and value != cls.model_fields[info.field_name].default:
            raise ValueError(f"applies to data.source 'csv', not {source!r}; allowed: leave it unset here")
        return value

    @field_validator("on_unreadable")
    @classmethod
    def _skipping_for_folders(cls, value: str, info: ValidationInfo) -> str:
        source = info.data.get("source")
        if value == "skip" and source not in ("images", "text", "audio"):
            raise ValueError(
                f"applies to folders of files (data.source images, text or audio), not {source!r}; "
                "allowed: error here"
            )
        return value

    @field_validator("target")
    @classmethod
    def _target_for_csv(cls, target: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "csv" and not target:
            raise ValueError("required when data.source is 'csv'; give the name of the column to predict")
        return target

    @field_validator("columns")
    @classmethod
    def _columns_for_csv(cls, columns: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if columns and info.data.get("source") != "csv":
            raise ValueError(
                f"applies to data.source 'csv', not {info.data.get('source')!r}; allowed: null here"
            )
        return columns

    @field_validator("text_column")
    @classmethod
    def _text_column_for_csv(cls, column: str | None, info: ValidationInfo) -> str | None:
        if column is None:
            return column
        if info.data.get("source") != "csv":
            raise ValueError(
                f"applies to data.source 'csv', not {info.data.get('source')!r} (a text folder holds only "
                "text); allowed: null here"
            )
        if info.data.get("features") is not None:
            raise ValueError("data.features is given too, and both choose the inputs; allowed: one of them")
        if column == info.data.get("target"):
            raise ValueError("is the target column; allowed: the column of text, or auto")
        return column

    @field_validator("task")
    @classmethod
    def _task_fits_source(cls, task: str, info: ValidationInfo) -> str:
        source = info.data.get("source")
        allowed = {
            "tfds": ("auto",),  # a TFDS dataset declares its own task
            "csv": ("auto", "classification", "regression", "forecast"),
            "npz": ("auto", "classification", "regression"),
            "images": ("auto", "classification"),
            "text": ("auto", "classification"),
            "audio": ("auto", "classification"),
        }.get(source, (task,))
        if task not in allowed:
            raise ValueError(f"does not apply to data.source {source!r}; allowed: {', '.join(allowed)}")
        return task

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if source != "tfds":
            path = info.data.get("path")
            return name or (Path(path).stem if path else source)
        if name is None:
            raise ValueError(
                f"required when data.source is 'tfds'; allowed: {', '.join(EMBEDDED_DATASETS)} "
                "or a TFDS catalog name"
            )
        if name in EMBEDDED_DATASETS:
            return name
        from pipelines.catalog import catalog_names  # imports TFDS, only for non-embedded names

        if name not in catalog_names():
            raise ValueError(
                f"unknown dataset; allowed: {', '.join(EMBEDDED_DATASETS)} or a TFDS catalog name"
            )
        return name


class MLPConfig(StrictModel):
    architecture: Literal["mlp"] = "mlp"
    units: list[PositiveInt] = Field([128, 64], description="Width of each hidden dense layer.")
    activation: ACTIVATIONS = Field("relu", description="Hidden-layer activation.")
    dropout: Fraction = Field(0.0, description="Dropout rate after each hidden layer.")
    batch_norm: bool = Field(False, description="Batch normalisation before each activation.")
    ensemble: PositiveInt = Field(
        1,
        description="Dense stacks on the same inputs whose outputs are averaged, trained together (1: one).",
    )


class TextInputConfig(StrictModel):
    """The text front end of the models that read raw strings (rnn, lstm, cnn); ignored otherwise."""

    sequence_length: PositiveInt = Field(200, description="Text only: tokens kept per text (padded or cut).")
    embedding_dim: PositiveInt = Field(64, description="Text only: size of each token's embedding.")
    max_tokens: PositiveInt = Field(
        20000, description="Text only: vocabulary size adapted on the train split."
    )


class AudioInputConfig(StrictModel):
    """The log-mel front end and the train-only augmentation of the models that read waveforms (rnn,
    lstm, cnn); ignored for other data. The train stage turns them into `models.audio.AudioFrontEnd`."""

    mel_bins: Annotated[int, Field(ge=2, le=256)] = Field(
        40, description="Audio only: mel frequency bands of the log-mel spectrogram."
    )
    frame_length: Annotated[int, Field(ge=16, le=8192)] = Field(
        256, description="Audio only: samples per STFT frame (256 = 32 ms at 8 kHz)."
    )
    frame_step: PositiveInt = Field(128, description="Audio only: samples between successive STFT frames.")
    noise_stddev: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0,
        description="Audio only: train-only white noise on the waveform, per clip of a random level up to "
        "this standard deviation (full scale is 1).",
    )
    frequency_masks: Annotated[int, Field(ge=0, le=8)] = Field(
        0, description="Audio only: train-only SpecAugment masks of mel bands per example."
    )
    frequency_mask_width: Annotated[int, Field(ge=0)] = Field(
        0, description="Audio only: widest frequency mask, in mel bands."
    )
    time_masks: Annotated[int, Field(ge=0, le=8)] = Field(
        0, description="Audio only: train-only SpecAugment masks of frames per example."
    )
    time_mask_width: Annotated[int, Field(ge=0)] = Field(
        0, description="Audio only: widest time mask, in frames."
    )

    @model_validator(mode="after")
    def _frames_fit(self) -> AudioInputConfig:
        if self.frame_step > self.frame_length:
            raise ValueError(
                f"frame_step {self.frame_step} skips samples between frames of frame_length "
                f"{self.frame_length}; allowed: frame_step <= frame_length"
            )
        if self.frequency_mask_width >= self.mel_bins:
            raise ValueError(
                f"frequency_mask_width {self.frequency_mask_width} would mask all {self.mel_bins} mel bands; "
                "allowed: frequency_mask_width < mel_bins"
            )
        return self

    def audio_front_end(self) -> dict[str, Any]:
        """The keyword arguments of `models.audio.AudioFrontEnd` (its statistics come from the data)."""
        return {name: getattr(self, name) for name in AudioInputConfig.model_fields}


class RawInputConfig(TextInputConfig, AudioInputConfig):
    """The front ends of the models that read raw strings or raw waveforms."""

    # Read by the train stage (vocabulary size, the audio front end), not keywords of the builder.
    pipeline_only_fields: ClassVar[frozenset[str]] = frozenset({"max_tokens", *AudioInputConfig.model_fields})


class CNNConfig(RawInputConfig):
    architecture: Literal["cnn"] = "cnn"
    filters: list[PositiveInt] = Field([32, 64], description="Filters of each conv block.")
    kernel_size: PositiveInt | list[PositiveInt] = Field(
        3, description="Kernel size of all conv blocks, or one per block."
    )
    padding: Literal["same", "valid"] = Field("same", description="Convolution padding.")
    activation: ACTIVATIONS = Field("relu", description="Activation of conv and dense layers.")
    pooling: Literal["max", "average", "none"] = Field("max", description="Pooling per block.")
    batch_norm: bool = Field(False, description="Batch normalisation in each conv block.")
    dropout: Fraction = Field(0.0, description="Dropout rate after each block and dense layer.")
    global_pooling: Literal["average", "max", "flatten"] = Field(
        "flatten", description="How the conv features become a vector."
    )
    dense_units: list[PositiveInt] = Field([128], description="Dense layers before the output.")
    block: Literal["plain", "residual"] = Field(
        "plain",
        description="Blocks after the first: one conv, or two convs plus a skip connection (residual).",
    )
    separable: bool = Field(
        False, description="Depthwise-separable convs in the blocks after the first: far fewer multiply-adds."
    )
    stem_stride: PositiveInt = Field(
        1, description="Stride of the first block's conv: 2 or 4 shrinks large images before the rest."
    )
    random_flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = Field(
        "none", description="Images only: train-only random flip (a Keras layer; identity at inference)."
    )
    random_translation: Fraction = Field(
        0.0, description="Images only: train-only random shift by up to this fraction of height and width."
    )
    random_contrast: Fraction = Field(
        0.0, description="Images only: train-only random contrast change by a factor within 1 +/- this."
    )

    @model_validator(mode="after")
    def _one_kernel_size_per_block(self) -> CNNConfig:
        if isinstance(self.kernel_size, list) and len(self.kernel_size) != len(self.filters):
            raise ValueError(
                f"kernel_size {self.kernel_size} has {len(self.kernel_size)} sizes for "
                f"{len(self.filters)} filters; give one size or one per block"
            )
        return self

    @field_validator("block")
    @classmethod
    def _residual_needs_same_padding(cls, block: str, info: ValidationInfo) -> str:
        if block == "residual" and info.data.get("padding") == "valid":
            raise ValueError("needs padding 'same' (the skip connection adds equal shapes); allowed: plain")
        return block

    def image_augmentation(self) -> dict[str, Any]:
        """The `random_*` augmentation fields that are switched on, with their values."""
        chosen = {
            "random_flip": self.random_flip,
            "random_translation": self.random_translation,
            "random_contrast": self.random_contrast,
        }
        return {name: value for name, value in chosen.items() if value not in ("none", 0.0)}


class GANConfig(StrictModel):
    architecture: Literal["gan"] = "gan"
    latent_dim: PositiveInt = Field(32, description="Size of the generator's noise vector.")
    generator_units: list[PositiveInt] = Field(
        [128, 64], description="Generator widths: Conv2DTranspose filters on images, dense units otherwise."
    )
    discriminator_units: list[PositiveInt] = Field(
        [64, 128], description="Discriminator widths: Conv2D filters on images, dense units otherwise."
    )
    conditional: bool | Literal["auto"] = Field(
        False, description="Condition both networks on the class label; auto: when the data has 2+ classes."
    )
    generator_learning_rate: Annotated[float, Field(gt=0.0)] = Field(2e-4, description="Generator Adam rate.")
    discriminator_learning_rate: Annotated[float, Field(gt=0.0)] = Field(
        2e-4, description="Discriminator Adam learning rate."
    )
    label_smoothing: Fraction = Field(0.1, description="One-sided smoothing of the real label.")
    embedding_dim: PositiveInt = Field(16, description="Class-embedding size when conditional.")
    batch_norm: bool = Field(True, description="Batch normalisation in the generator.")
    dropout: Fraction = Field(0.2, description="Dropout in the discriminator.")


class RecurrentConfig(RawInputConfig):
    """What the simple RNN and the LSTM/GRU share: the stack, the head and the text front end."""

    units: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        [64], description="Width of each recurrent layer, first to last."
    )
    bidirectional: bool = Field(False, description="Read each sequence forwards and backwards.")
    dropout: Fraction = Field(0.0, description="Dropout rate after each recurrent and dense layer.")
    implementation: Literal["keras", "reference"] = Field(
        "keras", description="Keras' built-in layers, or the seed's equations of models/cells.py."
    )
    dense_units: list[PositiveInt] = Field(
        [], description="Dense layers between the final state and the head."
    )


class RNNConfig(RecurrentConfig):
    architecture: Literal["rnn"] = "rnn"
    activation: ACTIVATIONS = Field("tanh", description="Activation of the recurrence h_t = σ(...).")


class LSTMConfig(RecurrentConfig):
    architecture: Literal["lstm"] = "lstm"
    cell: Literal["lstm", "gru"] = Field("lstm", description="Gated cell: LSTM, or GRU.")

    @field_validator("cell")
    @classmethod
    def _reference_has_lstm_only(cls, cell: str, info: ValidationInfo) -> str:
        if cell != "lstm" and info.data.get("implementation") == "reference":
            raise ValueError("implementation 'reference' has only the LSTM cell; allowed: lstm")
        return cell


class BuilderConfig(StrictModel):
    """A user's own model: a builder named by import path, with its keyword arguments (checked
    against the builder's signature and type hints by `pipelines.builders` when resolved)."""

    architecture: Literal["custom"] = "custom"
    builder: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] = Field(
        description="The builder as module:function (e.g. my_models.resnet:build), on the Python path "
        "or beside the experiment file; it takes the DataSpec and params, returns an uncompiled keras.Model."
    )
    params: dict[str, Any] = Field({}, description="Keyword arguments of the builder besides the spec.")
    path: str | None = Field(
        None,
        description="Folder the builder's module is imported from; set to the experiment file's folder "
        "when the module is found there, None: the Python path.",
    )


ModelConfig = Annotated[
    MLPConfig | CNNConfig | GANConfig | RNNConfig | LSTMConfig | BuilderConfig,
    Field(discriminator="architecture"),
]


class TrainConfig(StrictModel):
    epochs: PositiveInt = Field(10, description="Passes over the training split.")
    batch_size: PositiveInt = Field(64, description="Global batch size.")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("adam", description="Optimizer.")
    learning_rate: Annotated[float, Field(gt=0.0)] = Field(1e-3, description="Peak learning rate.")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="Learning-rate schedule after warm-up."
    )
    warmup_fraction: Fraction = Field(0.0, description="Share of steps with linear warm-up.")
    weight_decay: Annotated[float, Field(ge=0.0)] = Field(0.0, description="AdamW weight decay.")
    clipnorm: Annotated[float, Field(gt=0.0)] | None = Field(
        None, description="Clip each gradient to this norm; None disables clipping."
    )
    strategy: Literal["default", "mirrored", "multi_worker"] = Field(
        "default",
        description="tf.distribute strategy: one device, all local devices, or TF_CONFIG's cluster.",
    )
    jit_compile: bool = Field(False, description="Compile the train step with XLA.")
    steps_per_execution: PositiveInt = Field(1, description="Batches per compiled call.")
    checkpoint_seconds: Annotated[float, Field(ge=0.0)] = Field(
        10.0,
        description="Checkpoint, and write the epochs' metrics to MLflow, after the first epoch and then "
        "at the first epoch end this many seconds after the last checkpoint (0: every epoch).",
    )
    restore_best: Literal["none", "val_loss", "val_accuracy"] = Field(
        "none",
        description="Keep the weights of the epoch with the best value of this validation metric when "
        "training ends (none: the last epoch's).",
    )
    patience: PositiveInt | None = Field(
        None,
        description="Stop training when the validation metric of train.restore_best (val_loss when none) "
        "has not improved for this many epochs; train.epochs is then the most it trains. None: every epoch.",
    )
    augment_shift: Annotated[int, Field(ge=0)] = Field(
        0,
        description="Train-only random shift: sequences circularly by up to this many steps, images "
        "by up to this many pixels along each axis (zero-filled).",
    )
    augment_scale: Fraction = Field(
        0.0, description="Train-only random amplitude scaling of sequences and images, +/- this fraction."
    )
    sample_every: Annotated[int, Field(ge=0)] = Field(
        5, description="GAN only: log a grid of generated samples every this many epochs (0: never)."
    )
    gradient_probe_epochs: list[Annotated[int, Field(ge=0)]] = Field(
        [], description="rnn/lstm only: epochs after which to log ‖∂loss/∂h_t‖ per step (0: before training)."
    )


class EvaluateConfig(StrictModel):
    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        None, description="Test accuracy a model must reach to be promoted."
    )
    evaluator: str | None = Field(
        None,
        description="GAN only: experiment whose classifier scores generated samples; default cnn-<dataset>.",
    )
    generated_samples: PositiveInt = Field(1000, description="GAN only: samples generated for the scores.")


class ExportConfig(StrictModel):
    dir: str = Field("exports", description="Folder that receives exported SavedModels.")
    parity_tolerance: Annotated[float, Field(gt=0.0)] = Field(
        1e-5,
        description="Largest allowed |Keras - SavedModel| output difference, relative to the largest "
        "|output| where that exceeds 1 (a price of 1e5 is only held to float32's 6e-8 of it).",
    )
    registered_model: str | None = Field(
        None, description="Register the trained model under this name in the MLflow model registry."
    )


class TrackingConfig(StrictModel):
    uri: str | None = Field(
        None, description="MLflow tracking URI; MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db."
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the name.")


# Keys of a search range, as opposed to the sections of a nested `tune.space` mapping.
_RANGE_KEYS = frozenset({"low", "high", "log", "step", "choices"})
# What a trial may not change: where its runs go, and the search itself.
_UNSEARCHABLE = ("name", "description", "tracking", "tune", "export")


class SearchRange(StrictModel):
    """The values one config key takes in a search: `low`..`high` (integers when both are, on a
    grid of `step` when given, log-uniform with `log`), or one of `choices`."""

    low: int | float | None = Field(None, description="Smallest value (with high).")
    high: int | float | None = Field(None, description="Largest value (with low).")
    log: bool = Field(False, description="Draw uniformly in log space; needs low > 0.")
    step: Annotated[int | float, Field(gt=0)] | None = Field(
        None, description="Draw only low, low + step, ...; integers step by 1 when not given."
    )
    choices: Annotated[list[Any], Field(min_length=1)] | None = Field(
        None, description="The values to choose from, instead of low and high."
    )

    @model_validator(mode="after")
    def _one_form(self) -> SearchRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("give either choices or low/high (with log or step), not both")
            texts = [json.dumps(choice, sort_keys=True) for choice in self.choices]
            if len(set(texts)) < len(texts):
                raise ValueError(f"choices {self.choices} repeat a value; give each value once")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs low and high, or choices")
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}; allowed: low <= high")
        if self.log and self.low <= 0:
            raise ValueError(f"log needs low > 0, not {self.low}")
        if self.log and self.step is not None and not (self.integer and self.step == 1):
            raise ValueError("log and step do not combine (except step 1 for integers); drop one")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # `{low: 1.0e-4, high: 1.0e-1, log: true}` in a resolved config, not five keys with nulls.
        return {
            key: value for key, value in handler(self).items() if value is not None and value is not False
        }

    @property
    def integer(self) -> bool:
        """Whether the range holds integers: low, high (and step) written as integers."""
        return all(isinstance(value, int) for value in (self.low, self.high, self.step or 1))

    def grid(self) -> list[Any] | None:
        """Every value of the range for a grid search; None when a float range has no step."""
        if self.choices is not None:
            return list(self.choices)
        if not self.integer and self.step is None:
            return None
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + index * step for index in range(count)]
        return values if self.integer else [round(value, 12) for value in values]

    def bounds(self) -> list[Any]:
        """The values that every trial's draw lies between (or all choices): checked up front."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


class TuneConfig(StrictModel):
    """How `deeparch tune` searches: the space, the metric, the budget, the sampler and pruner."""

    space: dict[str, SearchRange] = Field(
        {}, description="Dotted config key -> {low, high[, log][, step]} or {choices: [...]}."
    )
    metric: str | None = Field(
        None,
        description="Epoch-end metric a trial reports and is judged by; None: val_accuracy for "
        "classification, else val_loss. Higher is better unless its name says loss, mse, mae or error.",
    )
    trials: PositiveInt = Field(20, description="Trials of the study in total, over all its workers.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Optuna sampler.")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Optuna pruner that stops unpromising trials at an epoch end."
    )
    startup_trials: Annotated[int, Field(ge=0)] = Field(
        5, description="Trials drawn at random before TPE models the space and before median pruning."
    )
    warmup_epochs: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="Epochs every trial trains before the median pruner may stop it; None: three "
        "quarters of the trial's epochs (of the most when train.epochs is searched).",
    )
    seed: int | None = Field(
        None,
        description="Sampler seed; None draws a fresh one per worker (workers with one seed draw alike).",
    )
    heartbeat_seconds: PositiveInt = Field(
        10,
        description="How often a worker marks its trial alive; a trial silent for twice this long is "
        "failed and run again.",
    )

    @field_validator("space", mode="before")
    @classmethod
    def _dotted_keys(cls, space: Any) -> Any:
        # `tune.space.train.learning_rate={...}` on the command line nests what a file writes as
        # `train.learning_rate: {...}`; both mean the same key, and a null value drops it.
        if not isinstance(space, dict):
            return space
        flat: dict[str, Any] = {}

        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                dotted = f"{prefix}{key}"
                if isinstance(value, dict) and value and not set(value) & _RANGE_KEYS:
                    walk(value, f"{dotted}.")
                elif value is None:
                    flat.pop(dotted, None)  # overrides come after the file's keys
                else:
                    flat[dotted] = value

        walk(space, "")
        return flat

    @field_validator("space")
    @classmethod
    def _searchable_keys(cls, space: dict[str, SearchRange]) -> dict[str, SearchRange]:
        for key in space:
            if key.split(".")[0] in _UNSEARCHABLE:
                raise ValueError(
                    f"key {key!r} cannot be searched; allowed: keys of seed, data, model, train, evaluate"
                )
        return space


class ExperimentConfig(StrictModel):
    """One experiment: a dataset, a model and how to train, evaluate and export it."""

    name: str = Field(description="Experiment name, `<architecture>-<dataset>` when shipped.")
    description: str = Field("", description="One line on what this experiment shows.")
    seed: int = Field(0, description="Seed for weights, shuffling and splits.")
    data: DataConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()
    tracking: TrackingConfig = TrackingConfig()
    tune: TuneConfig = TuneConfig()
    search_only_fields: ClassVar[frozenset[str]] = frozenset({"tune"})
    # What `resolve` changed so that the experiment fits its data, one sentence each (not a field:
    # neither in the config's hash nor in its YAML).
    _adjustments: list[str] = PrivateAttr(default_factory=list)

    @field_validator("model", mode="before")
    @classmethod
    def _builder_is_custom(cls, model: Any) -> Any:
        # `model: {builder: pkg.mod:fn, params: {...}}` needs no `architecture: custom`.
        if isinstance(model, dict) and "builder" in model and "architecture" not in model:
            return {"architecture": "custom", **model}
        return model

    @model_validator(mode="after")
    def _image_augmentation_on_images(self) -> ExperimentConfig:
        # Known here for CSV files and the embedded sequence datasets; the builder refuses the rest.
        augmentation = self.model.image_augmentation() if isinstance(self.model, CNNConfig) else {}
        if not augmentation:
            return self
        if self.data.source == "csv":
            holds = "a CSV file's rows"
        elif self.data.source == "text":
            holds = "text"
        elif self.data.source == "audio":
            holds = "audio"
        elif self.data.source == "tfds" and self.data.name in SEQUENCE_DATASETS:
            holds = f"the sequences of {self.data.name!r}"
        else:
            return self
        fields = ", ".join(f"model.{name}={value}" for name, value in augmentation.items())
        raise ValueError(
            f"{fields} augment images, but the data is {holds}; allowed: model.random_flip=none, "
            "model.random_translation=0, model.random_contrast=0"
        )

    @property
    def architecture(self) -> str:
        """The registered architecture name, or a custom builder's import path."""
        return self.model.builder if isinstance(self.model, BuilderConfig) else self.model.architecture

    @property
    def builder_folder(self) -> str | None:
        """The folder a custom builder's module is imported from (None: the Python path)."""
        return self.model.path if isinstance(self.model, BuilderConfig) else None

    @property
    def adjustments(self) -> list[str]:
        """What was changed from the experiment file so that it fits the data, one sentence each."""
        return list(self._adjustments)

    def hparams(self) -> dict[str, Any]:
        """Keyword arguments for the model builder."""
        if isinstance(self.model, BuilderConfig):
            return dict(self.model.params)
        pipeline_only = getattr(self.model, "pipeline_only_fields", frozenset())
        return self.model.model_dump(exclude={"architecture", *pipeline_only})

    def section_hash(self, *sections: str) -> str:
        """Short content hash of the given sections (all that shape a run when none), for tags and
        caching."""
        dumped = self.model_dump(mode="json")
        chosen = {key: dumped[key] for key in sections} if sections else self._run_sections(dumped)
        canonical = json.dumps(chosen, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def flat_params(self) -> dict[str, str]:
        """Every config value as a dotted `key -> str` mapping, for MLflow params."""
        return flatten(self._run_sections(self.model_dump(mode="json")))

    @classmethod
    def _run_sections(cls, dumped: dict[str, Any]) -> dict[str, Any]:
        # How to search (`tune`) is not part of what a run is: a trial and `deeparch run` of the
        # config it found are the same run (same hash, no tune.* params).
        return {key: value for key, value in dumped.items() if key not in cls.search_only_fields}

    def to_yaml(self) -> str:
        """The fully resolved config as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dict -> dotted keys with string values (lists stay as one JSON value)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = json.dumps(value) if isinstance(value, list) else str(value)
    return flat


def shipped_experiments() -> list[str]:
    """Names of the experiment files shipped in pipelines/experiments."""
    folder = resources.files("pipelines.experiments")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def experiment_path(name_or_path: str) -> Path:
    """The YAML file of a shipped experiment name, or the user's path."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"experiment file {name_or_path!r} does not exist")
        return candidate
    shipped = resources.files("pipelines.experiments") / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ConfigError(
            f"experiment {name_or_path!r} is neither a shipped experiment nor a YAML file; "
            f"shipped: {', '.join(shipped_experiments())}"
        )
    return Path(str(shipped))


def load_experiments(name_or_path: str, overrides: list[str] = ()) -> list[ExperimentConfig]:
    """Every experiment a file names (one, or a suite's list), with the user's overrides applied
    last (after a suite's own)."""
    return _load_experiments(name_or_path, [], list(overrides))


def _load_experiments(name_or_path: str, inherited: list[str], given: list[str]) -> list[ExperimentConfig]:
    """`inherited`: the overrides of the suites that name this file; `given`: the user's."""
    path = experiment_path(name_or_path)
    raw = _read_yaml(path)
    if "experiments" in raw:
        unknown = set(raw) - {"experiments", "description", "overrides"}
        if unknown:
            raise ConfigError(
                f"suite {name_or_path!r} has unknown key(s) {', '.join(sorted(unknown))}; "
                "allowed: experiments, description, overrides"
            )
        shared = [str(item) for item in raw.get("overrides") or []]
        configs: list[ExperimentConfig] = []
        for member in raw["experiments"] or []:
            name, own = _suite_member(member, name_or_path)
            configs.extend(_load_experiments(name, [*inherited, *shared, *own], given))
        return configs
    return [resolve(raw, [*inherited, *given], source=name_or_path, given=given, folder=path.parent)]


def _suite_member(member: Any, suite: str) -> tuple[str, list[str]]:
    """A suite entry: `name`, or `{experiment: name, overrides: [key=value, ...]}`."""
    if isinstance(member, str):
        return member, []
    if (
        isinstance(member, dict)
        and isinstance(member.get("experiment"), str)
        and set(member) <= {"experiment", "overrides"}
    ):
        return member["experiment"], [str(item) for item in member.get("overrides") or []]
    raise ConfigError(
        f"suite {suite!r} entry {member!r} is not allowed; give a name or "
        "{experiment: NAME, overrides: [key=value, ...]}"
    )


def load_experiment(name_or_path: str, overrides: list[str] = ()) -> ExperimentConfig:
    """Exactly one experiment; a suite is an error here."""
    configs = load_experiments(name_or_path, overrides)
    if len(configs) != 1:
        names = ", ".join(config.name for config in configs)
        raise ConfigError(f"{name_or_path!r} is a suite of {len(configs)} experiments ({names}); name one")
    return configs[0]


def resolve(
    raw: dict[str, Any],
    overrides: list[str] = (),
    source: str = "config",
    given: list[str] | None = None,
    folder: Path | None = None,
) -> ExperimentConfig:
    """Validate a raw config dict after applying dotted overrides, then fit it to its data.

    `given` are the overrides the user typed (default: all of them): what the experiment file
    sets is adapted to the data with a note in `adjustments`, what the user set is refused.
    `folder` (the experiment file's) is where a custom builder's module is looked for first.
    """
    tree = copy.deepcopy(raw)
    parsed = [parse_override(item) for item in overrides]
    overridden_model_keys = {path[1] for path, _ in parsed if len(path) > 1 and path[0] == "model"}
    for path, value in parsed:
        if path in (["model", "architecture"], ["model", "builder"]) and isinstance(tree.get("model"), dict):
            current = dict(tree["model"])
            if "builder" in current:
                current.setdefault("architecture", "custom")
            if current.get(path[1]) != value:
                # Another architecture's (or builder's) hyper-parameters would be unknown keys:
                # keep only those the command line sets.
                tree["model"] = {
                    key: item for key, item in tree["model"].items() if key in overridden_model_keys
                }
        if path == ["data", "source"] and isinstance(tree.get("data"), dict):
            if tree["data"].get("source", "tfds") != value and ["data", "name"] not in [p for p, _ in parsed]:
                # The experiment's TFDS dataset name does not name the user's file: the name
                # defaults to the file's stem instead.
                tree["data"].pop("name", None)
        _set_path(tree, path, value)
    try:
        config = ExperimentConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
    if isinstance(config.model, BuilderConfig):
        from pipelines.builders import check_builder  # imports the user's module

        check_builder(config.model, folder, source)
    overridden = {".".join(path) for path, _ in parsed}
    typed = overridden if given is None else {".".join(parse_override(item)[0]) for item in given}
    own_data = config.data.source != "tfds" and bool(overridden & {"data.source", "data.path"})
    if own_data and "name" not in overridden:
        # The experiment's name is about its own data: the user's runs get an MLflow experiment
        # of their own instead of landing among, say, the MNIST-1D runs.
        config.name = f"{config.architecture}-{config.data.name}"
    if config.data.task == "forecast":
        _without_forecast_augmentation(config, typed, source)
    _text_column_for_text_models(config)
    return config


def _text_column_for_text_models(config: ExperimentConfig) -> None:
    """A model that reads text (rnn, lstm, cnn) pointed at a CSV reads its one non-numeric column
    as text, whatever numeric columns are beside it (an id, a rating); an MLP reads the numbers."""
    data = config.data
    if (
        data.source == "csv"
        and data.task != "forecast"
        and data.text_column is None
        and data.features is None
        and config.architecture in TEXT_ARCHITECTURES
    ):
        data.text_column = "auto"


def _without_forecast_augmentation(config: ExperimentConfig, typed: set[str], source: str) -> None:
    """A forecast reads its windows in time order, which circular shifts and amplitude scaling
    break: refuse the augmentation the user typed, drop (and note) the experiment file's."""
    fields = {
        f"train.{name}": value
        for name in ("augment_shift", "augment_scale")
        if (value := getattr(config.train, name))
    }
    typed_fields = [f"{key}={value}" for key, value in fields.items() if key in typed]
    if typed_fields:
        raise ConfigError(
            f"{' '.join(typed_fields)}: a forecast (data.task=forecast) reads its windows in time order, "
            "which circular shifts and amplitude scaling break; allowed: train.augment_shift=0 "
            "train.augment_scale=0"
        )
    if fields:
        config.train.augment_shift, config.train.augment_scale = 0, 0.0
        shown = " ".join(f"{key}={value}" for key, value in fields.items())
        config._adjustments.append(
            f"dropped {source}'s {shown} (a forecast reads its windows in time order, which circular "
            "shifts and amplitude scaling break)"
        )


def parse_override(item: str) -> tuple[list[str], Any]:
    """`train.epochs=3` -> (["train", "epochs"], 3); values are read as YAML."""
    key, separator, text = item.partition("=")
    if not separator or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} is not of the form key.path=value (e.g. train.epochs=3)")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key.strip().split("."), value


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} holds a value, not a section")
        node = child
    node[path[-1]] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"experiment file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"experiment file {str(path)!r} must hold a mapping of sections")
    return loaded


def _describe(error: ValidationError, source: str) -> str:
    """One line per problem: the field, the bad value, what is allowed."""
    lines = []
    for problem in error.errors():
        field, model = _field_and_model(problem["loc"])
        value = problem.get("input")
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields)) if model else "see the README"
            lines.append(f"{field}: unknown key; allowed keys: {allowed}")
        elif problem["type"] == "missing":
            lines.append(f"{field}: missing; it is required")
        elif problem["type"] == "union_tag_invalid":
            tags = problem.get("ctx", {}).get("expected_tags", "")
            lines.append(
                f"{field}.architecture: {value.get('architecture')!r} is not allowed; allowed: {tags}"
                if isinstance(value, dict)
                else f"{field}: {value!r} is not allowed; allowed architectures: {tags}"
            )
        elif problem["type"] == "union_tag_not_found":
            lines.append(f"{field}.architecture: missing; it is required")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            if isinstance(value, dict) or (value is None and problem["type"] == "value_error"):
                # A check across fields names them; a missing value needs no "None is not allowed".
                lines.append(f"{field}: {message}")
            else:
                lines.append(f"{field}: {value!r} is not allowed: {message}")
    return f"invalid experiment config ({source}):\n  " + "\n  ".join(lines)


def _field_and_model(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """Dotted field name of a pydantic error location, and the model that holds its last key."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] = f"{parts[-1]}[{part}]"
        elif index == 1 and loc[0] == "model" and _tag_model(part) is not None:
            continue  # the discriminated-union tag pydantic inserts, not a key of the user's
        else:
            parts.append(str(part))
    return ".".join(parts) or "config", _holder_model(loc)


def _holder_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model in which the last element of `loc` is (or would be) a key."""
    model: type[BaseModel] | None = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is None:
            model = _tag_model(part)  # the architecture tag that follows `model`, if that is what it is
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            model = _tag_model(part)
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif str(part) == "model":
            model = None  # resolved by the tag that follows
        else:
            model = None
    return model


def _tag_model(tag: Any) -> type[BaseModel] | None:
    """The model config class of an architecture name (a discriminated-union tag)."""
    from typing import get_args

    members = get_args(get_args(ModelConfig)[0])
    by_tag = {member.model_fields["architecture"].default: member for member in members}
    return by_tag.get(str(tag))
