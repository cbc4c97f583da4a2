"""Convolutional network: Conv2D blocks on images and on the log-mel spectrograms of raw audio,
Conv1D blocks on sequences or on the token embeddings of raw text (keras-io's "text
classification from scratch"), a dense head."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import keras

from models.audio import AudioFrontEnd, audio_features
from models.augmentation import FlipMode, augmented_images
from models.heads import BATCH_NORM_MOMENTUM, normalized_inputs, output_head
from models.spec import DataSpec
from models.text import embedded_tokens


def build_cnn(
    spec: DataSpec,
    filters: Sequence[int] = (32, 64),
    kernel_size: int | Sequence[int] = 3,
    padding: Literal["same", "valid"] = "same",
    activation: str = "relu",
    pooling: Literal["max", "average", "none"] = "max",
    batch_norm: bool = False,
    dropout: float = 0.0,
    global_pooling: Literal["average", "max", "flatten"] = "flatten",
    dense_units: Sequence[int] = (128,),
    block: Literal["plain", "residual"] = "plain",
    separable: bool = False,
    stem_stride: int = 1,
    random_flip: FlipMode = "none",
    random_translation: float = 0.0,
    random_contrast: float = 0.0,
    vocabulary: list[str] | None = None,
    sequence_length: int = 200,
    embedding_dim: int = 64,
    audio: AudioFrontEnd | None = None,
) -> keras.Model:
    """Conv blocks (conv, optional batch norm, activation, pooling) then a dense head.

    Rank-3 inputs `(height, width, channels)` use Conv2D; rank-1 `(steps,)` and rank-2
    `(steps, features)` inputs use Conv1D. `kernel_size` is one size for all blocks or one per
    block. Pooling halves the resolution after each block while it stays above 1.

    The first block is the stem: one full convolution of the raw channels with stride
    `stem_stride`. Later blocks are `plain` (one conv) or `residual` (two convs plus a skip
    connection, projected by a 1x1 conv where the width changes), with depthwise-separable convs
    when `separable`. The `random_*` arguments put an `ImageAugmentation` layer in front of the
    network: it augments images in training only, so the model serves them unchanged.

    String inputs are text: `TextVectorization` with the train split's `vocabulary` keeps
    `sequence_length` tokens, an `Embedding` of `embedding_dim` (followed by dropout) feeds the
    Conv1D blocks, as in keras-io's text CNN; the model takes raw strings.

    Audio inputs (`spec.sample_rate` set) are waveforms: the `audio` front end's standardised
    log-mel spectrogram is read as a one-channel image `(frames, mel_bins, 1)` by Conv2D blocks;
    the model takes raw waveforms.
    """
    kernel_sizes = _per_block(kernel_size, len(filters), "kernel_size")
    if block == "residual" and padding != "same":
        raise ValueError(f"padding {padding!r} cannot feed a residual block's skip connection; allowed: same")
    inputs = keras.Input(shape=spec.input_shape, dtype=spec.input_dtype, name="inputs")
    x = augmented_images(inputs, spec, random_flip, random_translation, random_contrast)
    x = normalized_inputs(x, spec)
    if spec.input_dtype == "string":
        x = embedded_tokens(x, vocabulary, sequence_length, embedding_dim, mask_padding=False)
        if dropout:
            x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    elif spec.is_audio:
        x = audio_features(x, spec, audio)
        x = keras.layers.Reshape((*x.shape[1:], 1), name="spectrogram_as_image")(x)
    elif len(spec.input_shape) == 1:
        x = keras.layers.Reshape((spec.input_shape[0], 1), name="as_sequence")(x)
    layers = _RANK_LAYERS[2 if spec.is_image or spec.is_audio else 1]
    blocks = _Blocks(layers, padding, activation, batch_norm)
    for index, (width, size) in enumerate(zip(filters, kernel_sizes, strict=True)):
        if index == 0:
            x = blocks.conv_unit(x, width, size, f"{index}", strides=stem_stride)
        elif block == "residual":
            x = blocks.residual_block(x, width, size, index, separable)
        else:
            x = blocks.conv_unit(x, width, size, f"{index}", separable=separable)
        if pooling != "none" and min(x.shape[1:-1]) >= 2:
            x = layers[pooling](2, name=f"pool_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    if global_pooling == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = layers[f"global_{global_pooling}"](name="global_pool")(x)
    for index, width in enumerate(dense_units):
        x = keras.layers.Dense(width, activation=activation, name=f"dense_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dense_dropout_{index}")(x)
    outputs = output_head(x, spec)
    return keras.Model(inputs, outputs, name="cnn")


# The layer classes of each input rank: Conv2D and friends on images, Conv1D on sequences.
_RANK_LAYERS = {
    2: {
        "conv": keras.layers.Conv2D,
        "separable": keras.layers.SeparableConv2D,
        "max": keras.layers.MaxPooling2D,
        "average": keras.layers.AveragePooling2D,
        "global_max": keras.layers.GlobalMaxPooling2D,
        "global_average": keras.layers.GlobalAveragePooling2D,
    },
    1: {
        "conv": keras.layers.Conv1D,
        "separable": keras.layers.SeparableConv1D,
        "max": keras.layers.MaxPooling1D,
        "average": keras.layers.AveragePooling1D,
        "global_max": keras.layers.GlobalMaxPooling1D,
        "global_average": keras.layers.GlobalAveragePooling1D,
    },
}


@dataclass(frozen=True)
class _Blocks:
    """Builds the conv blocks of one network: its rank's layers and the shared conv settings."""

    layers: dict[str, type[keras.layers.Layer]]
    padding: str
    activation: str
    batch_norm: bool

    def conv_unit(
        self,
        x: keras.KerasTensor,
        width: int,
        size: int,
        suffix: str,
        strides: int = 1,
        separable: bool = False,
        activate: bool = True,
    ) -> keras.KerasTensor:
        """Conv, optional batch norm and (unless `activate` is False) the activation."""
        conv = self.layers["separable" if separable else "conv"]
        x = conv(
            width,
            size,
            strides=strides,
            padding=self.padding,
            use_bias=not self.batch_norm,
            name=f"conv_{suffix}",
        )(x)
        if self.batch_norm:
            x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"batch_norm_{suffix}")(x)
        if activate:
            x = keras.layers.Activation(self.activation, name=f"{self.activation}_{suffix}")(x)
        return x

    def residual_block(
        self, x: keras.KerasTensor, width: int, size: int, index: int, separable: bool
    ) -> keras.KerasTensor:
        """Two conv units whose sum with the block's input is activated (He et al., 2016)."""
        shortcut = x
        if x.shape[-1] != width:
            shortcut = self.conv_unit(x, width, 1, f"{index}_projection", activate=False)
        x = self.conv_unit(x, width, size, f"{index}a", separable=separable)
        x = self.conv_unit(x, width, size, f"{index}b", separable=separable, activate=False)
        x = keras.layers.Add(name=f"residual_{index}")([shortcut, x])
        return keras.layers.Activation(self.activation, name=f"{self.activation}_{index}")(x)


def _per_block(value: int | Sequence[int], blocks: int, field: str) -> list[int]:
    """One value per block from a scalar or a list of the right length."""
    if isinstance(value, int):
        return [value] * blocks
    values = list(value)
    if len(values) != blocks:
        raise ValueError(f"{field} has {len(values)} values for {blocks} blocks; give one or {blocks}")
    return values
