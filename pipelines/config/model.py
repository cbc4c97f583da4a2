"""The `model` section: one schema per built-in architecture, and a builder of the user's named by
import path; `architecture` tells them apart."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelines.config.base import ACTIVATIONS, Fraction, PositiveInt, StrictModel

TEXT_ARCHITECTURES = ("rnn", "lstm", "cnn")  # the models that read raw strings
AUDIO_ARCHITECTURES = ("rnn", "lstm", "cnn")  # the models with a log-mel front end for waveforms


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
    linear_skip: bool = Field(
        False,
        description="A linear model of the inputs (a table's standardised numbers, missing indicators and "
        "categories) added to every head's logits, starting at zero and learning 100 times faster than the "
        "stacks, which then learn what is not linear.",
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
