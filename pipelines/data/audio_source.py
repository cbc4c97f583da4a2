"""A folder of WAV files as a source: one sub-folder per class, or `train/`, `test/` (and
optionally `validation/`) split folders that each hold one sub-folder per class, as
`keras.utils.audio_dataset_from_directory` reads them.

Each file is decoded with `tf.audio.decode_wav` (16-bit PCM; several channels are averaged to
mono), resampled to `data.sample_rate` when its rate differs (polyphase filtering,
`scipy.signal.resample_poly`), cut at the end or padded with silence to `data.audio_seconds`, and
stored as int16 samples: the precision a 16-bit WAV holds, in half the bytes of float32 (the
prepared format scales them to [-1, 1) as they are read)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.config import DataConfig
from pipelines.data.own_files import UnreadableFile, class_folder_files
from pipelines.data.source import PCM_SCALE, Chunk, SourceData, first_line, route

# The files `keras.utils.audio_dataset_from_directory` reads.
AUDIO_EXTENSIONS = (".wav",)
CHUNK_CLIPS = 256


def read_audio_folder(config: DataConfig) -> SourceData:
    """Every .wav file of the folder, labelled by its class folder, split by its split folder or seeded."""
    found = class_folder_files(config, AUDIO_EXTENSIONS, "WAV file")
    files, labels, codes = found.files, found.labels, found.codes
    samples = clip_samples(config)
    unreadable = found.unreadable(config, "WAV file")

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(files), CHUNK_CLIPS):
            clips, read = [], []
            for index in range(start, min(start + CHUNK_CLIPS, len(files))):
                try:
                    clips.append(_clip(files[index], config.sample_rate, samples))
                except UnreadableFile as problem:
                    unreadable.meet(problem)
                    continue
                read.append(index)
            if read:
                yield from route(codes[read], np.stack(clips), labels[read])
        unreadable.done(len(files))

    return found.source_data(
        config, "audio", (samples,), "int16", chunks, unreadable, sample_rate=config.sample_rate
    )


def clip_samples(config: DataConfig) -> int:
    """Samples of every stored clip: `data.audio_seconds` at `data.sample_rate`."""
    return max(1, round(config.audio_seconds * config.sample_rate))


def _clip(file: Path, sample_rate: int, samples: int) -> np.ndarray:
    """One WAV file as `samples` int16 mono samples at `sample_rate`; `UnreadableFile` when it does
    not decode or holds no sample."""
    waveform, rate = _decoded(file)
    if rate != sample_rate:
        waveform = resample(waveform, rate, sample_rate)
    waveform = waveform[:samples]
    if len(waveform) < samples:
        waveform = np.pad(waveform, (0, samples - len(waveform)))
    return pcm16(waveform)


def pcm16(waveform: np.ndarray) -> np.ndarray:
    """Samples in [-1, 1) as 16-bit PCM (rounded, clipped), as a WAV file would hold them."""
    return np.clip(np.round(waveform * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1).astype(np.int16)


def _decoded(file: Path) -> tuple[np.ndarray, int]:
    """A WAV file's mono float32 samples in [-1, 1) and its sample rate."""
    import tensorflow as tf

    allowed = "allowed: 16-bit PCM .wav files with at least one sample"
    contents = file.read_bytes()
    if not contents:
        raise UnreadableFile(file, "is empty (0 bytes)", allowed)
    try:
        audio, rate = tf.audio.decode_wav(contents)
    except tf.errors.InvalidArgumentError as error:
        raise UnreadableFile(file, f"cannot be decoded ({_reason(error)})", allowed) from None
    audio = audio.numpy()
    if audio.shape[0] == 0:
        raise UnreadableFile(file, "holds no samples", allowed)
    # Several channels are one recording heard from several places: their mean is the mono signal.
    return audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0], int(rate)


def resample(waveform: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """`waveform` sampled at `rate` resampled to `target_rate` by polyphase filtering (scipy's
    `resample_poly`: upsample, low-pass (Kaiser window), downsample by the reduced ratio)."""
    from scipy.signal import resample_poly

    divisor = math.gcd(rate, target_rate)
    return resample_poly(waveform, target_rate // divisor, rate // divisor).astype(np.float32)


def _reason(error: Exception) -> str:
    """TensorFlow's reason without its op and device decorations."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", first_line(error))
    return text.split(" [Op:")[0].strip()
