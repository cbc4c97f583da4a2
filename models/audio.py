"""The audio front end every model that reads raw waveforms shares: a log-mel spectrogram computed
by Keras layers inside the model, standardised per mel band with the train split's statistics,
and train-only augmentation (waveform noise, SpecAugment's time and frequency masks). So the
model, and its SavedModel, takes raw waveforms `(samples,)` in [-1, 1]."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from models.spec import DataSpec

LOG_MEL_LAYER = "log_mel"
# Power below this floor (-60 dB of a full-scale sine's band power) reads as silence: padding and
# faint noise get one value, so that a quiet recording is not told apart by its hiss.
POWER_FLOOR = 1e-6


@dataclass(frozen=True)
class AudioFrontEnd:
    """How waveforms become model features: STFT frames of `frame_length` samples every
    `frame_step`, `mel_bins` log-mel bands standardised with `mean` and `variance` (per band,
    from the train split: `adapt_spectrogram_statistics`), and train-only augmentation: white
    noise of a random level up to `noise_stddev` on the waveform, `frequency_masks` masks of up to
    `frequency_mask_width` bands and `time_masks` masks of up to `time_mask_width` frames."""

    mel_bins: int = 40
    frame_length: int = 256
    frame_step: int = 128
    noise_stddev: float = 0.0
    frequency_masks: int = 0
    frequency_mask_width: int = 0
    time_masks: int = 0
    time_mask_width: int = 0
    mean: tuple[float, ...] | None = None
    variance: tuple[float, ...] | None = None

    def log_mel(self, sample_rate: int, name: str = LOG_MEL_LAYER) -> LogMelSpectrogram:
        """The spectrogram layer of this front end for audio at `sample_rate`."""
        return LogMelSpectrogram(sample_rate, self.mel_bins, self.frame_length, self.frame_step, name=name)


@keras.saving.register_keras_serializable(package="deeparch")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveforms `(batch, samples)` -> log-mel power in dB `(batch, frames, mel_bins)`, frames as
    rows (time steps for a recurrent model, the image's height for a CNN).

    Keras' `MelSpectrogram` computes the mel power; the decibels are taken here because its own
    `power_to_db` clips at `top_db` below the loudest value of the whole batch, which would make
    an example's features depend on the examples batched with it.
    """

    def __init__(self, sample_rate: int, mel_bins: int, frame_length: int, frame_step: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.sample_rate, self.mel_bins = sample_rate, mel_bins
        self.frame_length, self.frame_step = frame_length, frame_step
        self.mel = keras.layers.MelSpectrogram(
            fft_length=1 << (frame_length - 1).bit_length(),  # the next power of two
            sequence_length=frame_length,
            sequence_stride=frame_step,
            sampling_rate=sample_rate,
            num_mel_bins=mel_bins,
            power_to_db=False,
            name="mel_power",
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.mel.build(input_shape)

    def call(self, waveforms: Any) -> Any:
        power = self.mel(waveforms)  # (batch, mel_bins, frames)
        decibels = 10.0 * ops.log10(ops.maximum(power, POWER_FLOOR))
        return ops.transpose(decibels, (0, 2, 1))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, mel_bins, frames = self.mel.compute_output_shape(input_shape)
        return (batch, frames, mel_bins)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "mel_bins": self.mel_bins,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
        }


@keras.saving.register_keras_serializable(package="deeparch")
class WaveformNoise(keras.layers.Layer):
    """White noise added to waveforms `(batch, samples)` at a random level per example, uniform
    between none and `stddev`, only when called with `training=True`.

    One fixed level (Keras' `GaussianNoise`) would teach the model that silence always hisses:
    clean recordings, whose silence is far quieter, would then read as something it never heard.
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.stddev, self.seed = stddev, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, waveforms: Any, training: bool | None = None) -> Any:
        if not training:
            return waveforms
        levels = keras.random.uniform(
            (ops.shape(waveforms)[0], 1), 0.0, self.stddev, seed=self.seed_generator
        )
        noise = keras.random.normal(ops.shape(waveforms), seed=self.seed_generator)
        return waveforms + ops.cast(levels * noise, waveforms.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="deeparch")
class SpectrogramMasking(keras.layers.Layer):
    """SpecAugment's masks (Park et al., 2019) on standardised spectrograms `(batch, frames, bands)`:
    per example, `time_masks` runs of up to `time_mask_width` frames and `frequency_masks` runs of
    up to `frequency_mask_width` bands, at random places, set to 0 (the band's mean). Only when
    called with `training=True`; otherwise the spectrogram passes unchanged."""

    def __init__(
        self,
        frequency_masks: int = 0,
        frequency_mask_width: int = 0,
        time_masks: int = 0,
        time_mask_width: int = 0,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.frequency_masks, self.frequency_mask_width = frequency_masks, frequency_mask_width
        self.time_masks, self.time_mask_width = time_masks, time_mask_width
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, spectrograms: Any, training: bool | None = None) -> Any:
        if not training:
            return spectrograms
        batch = ops.shape(spectrograms)[0]
        frames, bands = spectrograms.shape[1], spectrograms.shape[2]
        keep_frames = ops.ones((batch, frames))
        for _ in range(self.time_masks):
            keep_frames = keep_frames * self._kept(batch, frames, self.time_mask_width)
        keep_bands = ops.ones((batch, bands))
        for _ in range(self.frequency_masks):
            keep_bands = keep_bands * self._kept(batch, bands, self.frequency_mask_width)
        keep = keep_frames[:, :, None] * keep_bands[:, None, :]
        return spectrograms * ops.cast(keep, spectrograms.dtype)

    def _kept(self, batch: Any, length: int, widest: int) -> Any:
        """(batch, length): 0 inside one random run of 0..widest positions per example, else 1."""
        widths = ops.floor(keras.random.uniform((batch, 1), 0.0, widest + 1.0, seed=self.seed_generator))
        room = ops.maximum(length - widths + 1.0, 1.0)
        starts = ops.floor(keras.random.uniform((batch, 1), seed=self.seed_generator) * room)
        positions = ops.cast(ops.arange(length), "float32")[None, :]
        inside = ops.logical_and(positions >= starts, positions < starts + widths)
        return 1.0 - ops.cast(inside, "float32")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "frequency_masks": self.frequency_masks,
            "frequency_mask_width": self.frequency_mask_width,
            "time_masks": self.time_masks,
            "time_mask_width": self.time_mask_width,
            "seed": self.seed,
        }


def adapt_spectrogram_statistics(waveforms: Any, sample_rate: int, front_end: AudioFrontEnd) -> AudioFrontEnd:
    """`front_end` with the mean and variance of each log-mel band over `waveforms` (batches of
    `(batch, samples)`, e.g. a tf.data dataset of the train split), as `Normalization.adapt` finds them."""
    log_mel = front_end.log_mel(sample_rate)
    normalization = keras.layers.Normalization(axis=-1)
    normalization.adapt(waveforms.map(log_mel) if hasattr(waveforms, "map") else log_mel(waveforms))
    mean = np.ravel(ops.convert_to_numpy(normalization.mean))
    variance = np.ravel(ops.convert_to_numpy(normalization.variance))
    return dataclasses.replace(
        front_end, mean=tuple(float(v) for v in mean), variance=tuple(float(v) for v in variance)
    )


def audio_features(
    waveforms: keras.KerasTensor, spec: DataSpec, front_end: AudioFrontEnd | None
) -> keras.KerasTensor:
    """Raw waveforms -> standardised log-mel spectrograms `(frames, mel_bins)`, with the front end's
    train-only noise before and masks after the spectrogram."""
    if front_end is None or front_end.mean is None:
        raise ValueError(
            "audio front end without statistics for a waveform input; compute them with "
            "models.audio.adapt_spectrogram_statistics(waveforms, sample_rate, AudioFrontEnd(...))"
        )
    x = waveforms
    if front_end.noise_stddev:
        x = WaveformNoise(front_end.noise_stddev, name="waveform_noise")(x)
    x = front_end.log_mel(spec.sample_rate)(x)
    x = keras.layers.Normalization(
        axis=-1, mean=list(front_end.mean), variance=list(front_end.variance), name="mel_normalization"
    )(x)
    if (front_end.frequency_masks and front_end.frequency_mask_width) or (
        front_end.time_masks and front_end.time_mask_width
    ):
        x = SpectrogramMasking(
            front_end.frequency_masks,
            front_end.frequency_mask_width,
            front_end.time_masks,
            front_end.time_mask_width,
            name="spectrogram_masking",
        )(x)
    return x


def log_mel_spectrograms(model: keras.Model, waveforms: Any) -> np.ndarray:
    """The log-mel spectrograms `(examples, frames, mel_bins)` a model's front end computes of
    `waveforms` (before standardisation), e.g. to show what the model hears."""
    return ops.convert_to_numpy(model.get_layer(LOG_MEL_LAYER)(ops.convert_to_tensor(waveforms)))
