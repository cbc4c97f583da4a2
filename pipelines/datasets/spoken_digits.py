"""`spoken_digits`: the words "zero" to "nine" spoken by synthetic voices and recorded through
simulated rooms and microphones, generated locally (no network), 8 kHz, one second per clip, as
a folder of the Free Spoken Digit Dataset reads through `data.source=audio`.

No recording of spoken words ships with the packages deeparch installs, and nothing may download
at run time, so this builder makes one, as close to human recordings as the tools at hand allow:

- **Voices from three synthesisers**, each where installed: espeak-ng (formant synthesis, 8
  English accents x 12 voice variants), flite and festival, whose voices are built from
  recordings of real speakers (flite's kal, awb, rms and slt; festival's kal and ked diphones and
  the slt HTS voice). Each recorded voice is heard as several speakers: its waveform replayed
  at another rate (0.86-1.16x, which moves pitch and formants together, as a longer or shorter
  vocal tract does), at random speeds and (flite, espeak-ng) pitches.
- **Recording conditions**: a room (reverberation from an exponentially decaying impulse
  response, RT60 0-0.5 s), a microphone's colour (its low and high cut-offs), background noise of
  several kinds (white, pink, brown, mains hum, speech-like babble) at 5-45 dB below the word,
  levels from faint to loud.
- **Clips as people record them**: half are trimmed recordings, the word with 0-0.2 s of room
  noise around it and shorter than the one-second window, cut or padded with digital silence
  to a second as the audio folder reader does (the Free Spoken Digit Dataset's clips are such);
  the other half fill the second with room noise and the word somewhere in it.

The test split's speakers are never heard in training: espeak-ng's variants m3, m6, f2 and f5 in
every accent, flite's awb and festival's ked. espeak-ng is needed; a missing flite or festival
(or festival voice) leaves its voices out, and generating says which and how to install them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from pipelines.data.audio_source import pcm16, resample
from pipelines.data.source import PCM_SCALE
from pipelines.datasets.embedded import EmbeddedBuilder

SEED = 20261206
SAMPLE_RATE = 8000
CLIP_SAMPLES = SAMPLE_RATE  # one second
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INSTALL = {
    "espeak-ng": "apt-get install espeak-ng (Debian/Ubuntu), dnf install espeak-ng or brew install espeak-ng",
    "flite": "apt-get install flite (Debian/Ubuntu) or brew install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
}
COMMAND = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/local/share/festival/voices")

ESPEAK_ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
ESPEAK_VARIANTS = {
    "train": ("m1", "m2", "m4", "m5", "m7", "f1", "f3", "f4"),
    "test": ("m3", "m6", "f2", "f5"),
}
# Voices built from recordings of real people, by synthesiser and split (festival's by the name
# of its voice directory). The slt and kal of flite and festival are the same speakers: same split.
RECORDED_VOICES = {
    "flite": {"train": ("kal16", "rms", "slt"), "test": ("awb",)},
    "festival": {"train": ("kal_diphone", "cmu_us_slt_arctic_hts"), "test": ("ked_diphone",)},
}
# Each recorded voice speaks as this many speakers, replayed at these rates (vocal tract length).
REPLAY_RATES = (0.86, 0.9, 0.94, 0.98, 1.02, 1.06, 1.1, 1.16)
TAKES = {  # clips of each word per speaker
    "espeak-ng": {"train": 2, "test": 1},
    "flite": {"train": 4, "test": 2},
    "festival": {"train": 4, "test": 2},
}
SPEED = (0.8, 1.35)  # duration stretch: above 1 is slower than the voice's default
ESPEAK_PITCH = (20, 80)  # espeak-ng's 0..99 scale, default 50
FLITE_PITCH = (0.85, 1.2)  # times the voice's mean pitch
PEAK = (0.03, 0.9)  # peak level of the word (log-uniform), full scale 1
NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
SNR_DB = (5.0, 45.0)  # the word's power over the noise's
RT60 = (0.05, 0.5)  # seconds of reverberation, in the rooms that have it
TRIMMED_SILENCE = (0.0, 0.2)  # seconds of room noise before and after a trimmed recording's word
SILENCE = 0.02  # the word starts and ends where it first and last exceeds this share of its peak


@dataclass(frozen=True)
class Speaker:
    """One speaker of the dataset: a synthesiser's voice, replayed at `rate` (1: as synthesised)."""

    synthesiser: str
    voice: str
    rate: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.synthesiser}:{self.voice}" + (f"@{self.rate:.2f}" if self.rate != 1.0 else "")


def missing_tool() -> str | None:
    """Why this dataset cannot be generated here, or None: espeak-ng must be on PATH."""
    if shutil.which(COMMAND["espeak-ng"]):
        return None
    return (
        "it is synthesised by espeak-ng (with flite and festival where installed), which is not "
        f"installed (not on PATH); install it: {INSTALL['espeak-ng']}"
    )


def available_voices(synthesiser: str) -> set[str]:
    """The recorded voices of `synthesiser` (flite or festival) this machine can speak with: none
    when the synthesiser is not installed, and festival's only where the voice is installed."""
    if not shutil.which(COMMAND[synthesiser]):
        return set()
    voices = {voice for group in RECORDED_VOICES[synthesiser].values() for voice in group}
    if synthesiser == "festival":
        voices = {voice for voice in voices if any(_festival_voice_folders(voice))}
    return voices


def _festival_voice_folders(voice: str) -> list[Path]:
    """Where festival's `voice` is installed (`<voices>/<language>/<voice>`), if anywhere."""
    return [folder for root in FESTIVAL_VOICE_DIRS for folder in Path(root).glob(f"*/{voice}")]


def missing_voices() -> list[str]:
    """The recorded voices left out here, each as `synthesiser:voice`."""
    return [
        f"{synthesiser}:{voice}"
        for synthesiser, splits in RECORDED_VOICES.items()
        for voices in splits.values()
        for voice in voices
        if voice not in available_voices(synthesiser)
    ]


def missing_note() -> str | None:
    """The line generating prints when voices are left out: which, and how to install them."""
    missing = missing_voices()
    if not missing:
        return None
    tools = sorted({voice.split(":")[0] for voice in missing})
    return f"spoken_digits: generating without {', '.join(missing)} (not installed); " + "; ".join(
        f"install {tool}: {INSTALL[tool]}" for tool in tools
    )


def speakers(split: str, recorded: dict[str, set[str]] | None = None) -> list[Speaker]:
    """The speakers of a split: espeak-ng's voices (`accent+variant`) and every replay rate of the
    recorded voices in `recorded` (by synthesiser; default: all of them)."""
    result = [
        Speaker("espeak-ng", f"{accent}+{variant}")
        for accent in ESPEAK_ACCENTS
        for variant in ESPEAK_VARIANTS[split]
    ]
    for synthesiser, splits in RECORDED_VOICES.items():
        for voice in splits[split]:
            if recorded is None or voice in recorded.get(synthesiser, set()):
                result.extend(Speaker(synthesiser, voice, rate) for rate in REPLAY_RATES)
    return result


class SpokenDigits(EmbeddedBuilder):
    """About 3,600 one-second clips of spoken digits at 8 kHz (int16), 10 classes, from espeak-ng,
    flite and festival voices in simulated rooms; speakers disjoint between train and test."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "espeak-ng voices, 8 accents x 12 variants; test variants unseen in train.",
        "2.0.0": "flite and festival voices from real speakers, replay rates, rooms, microphones, "
        "noise kinds and trimmed recordings shorter than the window.",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "The digits zero to nine spoken by espeak-ng, flite and festival voices at random "
                "speeds, pitches and replay rates, through simulated rooms, microphones and "
                "background noise, 8 kHz, one second each; test speakers unseen in training. "
                "Generated by this project from the synthesisers' output, which is free to use."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "audio": tfds.features.Audio(
                        shape=(CLIP_SAMPLES,), dtype=np.int16, sample_rate=SAMPLE_RATE
                    ),
                    "label": tfds.features.ClassLabel(names=list(WORDS)),
                    "speaker": tfds.features.Text(),
                }
            ),
            supervised_keys=("audio", "label"),
            homepage="https://github.com/espeak-ng/espeak-ng",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        problem = missing_tool()
        if problem:
            raise OSError(f"spoken_digits: {problem}")
        recorded = {synthesiser: available_voices(synthesiser) for synthesiser in RECORDED_VOICES}
        note = missing_note()
        if note:
            print(note, file=sys.stderr)
        rng = np.random.default_rng(SEED)
        return {
            split: self._generate_examples(plan(split, rng, recorded), split) for split in ("train", "test")
        }

    def _generate_examples(self, clips: list[dict], split: str):
        for index, (clip, samples) in enumerate(zip(clips, record_all(clips), strict=True)):
            yield (
                f"{split}-{index:05d}",
                {"audio": samples, "label": WORDS.index(clip["word"]), "speaker": clip["speaker"].name},
            )


def record_all(clips: list[dict]) -> Iterator[np.ndarray]:
    """`record` of every clip of a `plan`, in order, in parallel threads (festival's words first,
    a voice's batch in one process)."""
    with tempfile.TemporaryDirectory(prefix="spoken-digits-") as folder:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(lambda batch: _festival_batch(batch, Path(folder)), _festival_batches(clips)))
            yield from pool.map(lambda clip: record(**clip, folder=Path(folder)), clips)


def plan(split: str, rng: np.random.Generator, recorded: dict[str, set[str]] | None = None) -> list[dict]:
    """Every clip of a split with its random settings, drawn in a fixed order (so seeded)."""
    clips = []
    for speaker in speakers(split, recorded):
        for word in WORDS:
            for _ in range(TAKES[speaker.synthesiser][split]):
                clips.append(
                    {
                        "word": word,
                        "speaker": speaker,
                        "speed": float(rng.uniform(*SPEED)),
                        "pitch": float(rng.uniform(0.0, 1.0)),
                        "peak": float(np.exp(rng.uniform(*np.log(PEAK)))),
                        "noise": NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))],
                        "snr_db": float(rng.uniform(*SNR_DB)),
                        "rt60": float(rng.uniform(*RT60)) if rng.random() < 0.6 else 0.0,
                        "low_cut": float(rng.uniform(50.0, 300.0)),
                        "high_cut": float(rng.uniform(2500.0, 3900.0)),
                        "trimmed": bool(rng.random() < 0.5),
                        "offset": float(rng.random()),
                        "seed": int(rng.integers(2**31)),
                    }
                )
    return clips


def record(
    word: str,
    speaker: Speaker,
    speed: float,
    pitch: float,
    peak: float,
    noise: str,
    snr_db: float,
    rt60: float,
    low_cut: float,
    high_cut: float,
    trimmed: bool,
    offset: float,
    seed: int,
    folder: Path,
) -> np.ndarray:
    """One clip, int16 samples at 8 kHz: `word` as `speaker` says it at `speed` (duration stretch)
    and `pitch` (0..1 of the voice's range), through a room of `rt60` seconds (0: none) and a
    microphone passing `low_cut`..`high_cut` Hz, at `peak`, over `noise` at `snr_db` below it. A
    `trimmed` recording is the word with a little room noise around it, padded with digital
    silence to the second; otherwise noise fills the second and the word starts at `offset` (0..1)
    of the room left."""
    rng = np.random.default_rng(seed)
    speech = _voiced(word, speaker, speed, pitch, folder)
    speech = _microphone(_room(speech, rt60, rng), low_cut, high_cut)
    speech = speech * (peak / max(1e-9, float(np.abs(speech).max())))
    if trimmed:
        before, after = (int(rng.uniform(*TRIMMED_SILENCE) * SAMPLE_RATE) for _ in range(2))
        length = min(CLIP_SAMPLES, before + len(speech) + after)
        start = before
    else:
        length = CLIP_SAMPLES
        start = int(offset * max(0, CLIP_SAMPLES - len(speech)))
    voice = np.zeros(length)
    words = speech[: max(0, length - start)]
    voice[start : start + len(words)] = words
    power = float(np.mean(speech**2))
    background = _noise(noise, length, rng, speech) * np.sqrt(power / 10 ** (snr_db / 10))
    clip = np.zeros(CLIP_SAMPLES)
    clip[:length] = voice + _microphone(background, low_cut, high_cut)
    return pcm16(np.clip(clip, -1.0, 1.0))


def _voiced(word: str, speaker: Speaker, speed: float, pitch: float, folder: Path) -> np.ndarray:
    """`word` from the synthesiser, trimmed of silence, replayed at the speaker's rate, at 8 kHz."""
    path = _voiced_path(word, speaker, speed, pitch, folder)
    if not path.exists():  # festival's are synthesised beforehand, a voice's clips in one process
        subprocess.run(_command(word, speaker, speed, pitch, path), check=True, capture_output=True)
    with wave.open(str(path), "rb") as reader:
        rate = reader.getframerate()
        speech = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2") / PCM_SCALE
    path.unlink()
    loud = np.flatnonzero(np.abs(speech) > SILENCE * np.abs(speech).max())
    speech = speech[loud[0] : loud[-1] + 1]
    # Played at `rate` x its own rate (rounded to 10 Hz, so the resampling ratio stays small).
    played = int(round(rate * speaker.rate / 10.0)) * 10
    return resample(speech, played, SAMPLE_RATE).astype(np.float64)


def _voiced_path(word: str, speaker: Speaker, speed: float, pitch: float, folder: Path) -> Path:
    """Where the synthesiser writes `word` as `speaker` says it."""
    return folder / f"{speaker.synthesiser}-{speaker.voice}-{speaker.rate}-{word}-{speed:.4f}-{pitch:.4f}.wav"


def _festival_batches(clips: list[dict], size: int = 40) -> list[list[dict]]:
    """festival's clips in batches of one voice: festival takes 0.3 s to start, 0.02 s a word."""
    by_voice: dict[str, list[dict]] = {}
    for clip in clips:
        if clip["speaker"].synthesiser == "festival":
            by_voice.setdefault(clip["speaker"].voice, []).append(clip)
    return [
        group[start : start + size] for group in by_voice.values() for start in range(0, len(group), size)
    ]


def _festival_batch(clips: list[dict], folder: Path) -> None:
    """Synthesise festival's `clips` (all of one voice) in one festival process."""
    script = [f"(voice_{clips[0]['speaker'].voice})"]
    for clip in clips:
        path = _voiced_path(clip["word"], clip["speaker"], clip["speed"], clip["pitch"], folder)
        script += [
            f"(Parameter.set 'Duration_Stretch {clip['speed']:.3f})",
            f'(utt.save.wave (utt.synth (Utterance Text "{clip["word"]}")) "{path}" (quote riff))',
        ]
    subprocess.run(["festival", "--pipe"], input="\n".join(script).encode(), check=True, capture_output=True)


def _command(word: str, speaker: Speaker, speed: float, pitch: float, path: Path) -> list[str]:
    """The synthesiser's command line that writes `word` to `path`."""
    if speaker.synthesiser == "espeak-ng":
        words_per_minute = int(175 / speed)
        espeak_pitch = int(ESPEAK_PITCH[0] + pitch * (ESPEAK_PITCH[1] - ESPEAK_PITCH[0]))
        return [
            "espeak-ng",
            "-w",
            str(path),
            "-v",
            speaker.voice,
            "-s",
            str(words_per_minute),
            "-p",
            str(espeak_pitch),
            word,
        ]
    if speaker.synthesiser == "flite":
        mean_pitch = {"slt": 170.0}.get(speaker.voice, 105.0)
        target = mean_pitch * (FLITE_PITCH[0] + pitch * (FLITE_PITCH[1] - FLITE_PITCH[0]))
        return [
            "flite", "-voice", speaker.voice, "-t", word, "-o", str(path),
            "--setf", f"duration_stretch={speed:.3f}", "--setf", f"int_f0_target_mean={target:.1f}",
        ]  # fmt: skip
    raise ValueError(f"{speaker.synthesiser} clips are synthesised in batches (_festival_batch)")


def _room(speech: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """`speech` heard in a room whose reverberation decays by 60 dB in `rt60` seconds (0: none):
    the direct sound plus an exponentially decaying noise tail (Schroeder's model of late
    reverberation), at a random direct-to-reverberant ratio of 0-12 dB."""
    if rt60 <= 0.0:
        return speech
    from scipy.signal import fftconvolve

    times = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.normal(size=len(times)) * np.exp(-6.9 * times / rt60)
    direct_to_reverberant = 10 ** (rng.uniform(0.0, 12.0) / 10)
    response = tail * np.sqrt(1.0 / (direct_to_reverberant * max(1e-12, float(np.sum(tail**2)))))
    response[0] += 1.0
    return fftconvolve(speech, response)


def _microphone(signal: np.ndarray, low_cut: float, high_cut: float) -> np.ndarray:
    """`signal` through a microphone and its preamplifier: second-order high-pass at `low_cut`
    and low-pass at `high_cut` Hz (Butterworth)."""
    from scipy.signal import butter, sosfilt

    sections = butter(2, [low_cut, high_cut], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sections, signal)


def _noise(kind: str, length: int, rng: np.random.Generator, speech: np.ndarray) -> np.ndarray:
    """`length` samples of background noise of unit power: white, pink (1/f power), brown
    (1/f^2), mains hum (50 or 60 Hz and its harmonics over faint white noise) or babble (the
    word itself reversed and overlapped at random delays: speech-like, but no word)."""
    if kind in ("pink", "brown"):
        spectrum = np.fft.rfft(rng.normal(size=length))
        frequencies = np.maximum(np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE), 20.0)
        spectrum /= frequencies ** (0.5 if kind == "pink" else 1.0)
        noise = np.fft.irfft(spectrum, length)
    elif kind == "hum":
        times = np.arange(length) / SAMPLE_RATE
        mains = rng.choice([50.0, 60.0])
        noise = sum(
            rng.uniform(0.2, 1.0)
            / harmonic
            * np.sin(2 * np.pi * mains * harmonic * times + rng.uniform(0, 2 * np.pi))
            for harmonic in range(1, 8)
        ) + 0.1 * rng.normal(size=length)
    elif kind == "babble":
        noise = np.zeros(length)
        reversed_speech = speech[::-1]
        for _ in range(4):
            start = int(rng.integers(-len(reversed_speech) // 2, length))
            piece = reversed_speech[max(0, -start) : max(0, -start) + length - max(0, start)]
            noise[max(0, start) : max(0, start) + len(piece)] += piece
        noise += 0.05 * np.std(speech) * rng.normal(size=length)
    else:
        noise = rng.normal(size=length)
    return noise / max(1e-12, float(np.sqrt(np.mean(noise**2))))
