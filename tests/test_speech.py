"""Speech from the user's recordings: a folder of WAV files (with and without split folders) through
the four stages, raw-waveform SavedModels, train-only augmentation, bad audio refused before any
run, and the embedded `spoken_digits` synthesised by espeak-ng, flite and festival."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import mlflow
import numpy as np
import pytest

from models.audio import AudioFrontEnd, adapt_spectrogram_statistics
from models.spec import DataSpec
from pipelines.config import DataConfig, load_experiment
from pipelines.data import load_dataset

from .conftest import all_runs, assert_each_refused_before_any_run, shared_store

# A quarter second at 8 kHz, 8 mel bands of 64-sample frames, one epoch of a tiny model: what is
# tested is the plumbing.
TINY_AUDIO = [
    "data.audio_seconds=0.25",
    "model.mel_bins=8",
    "model.frame_length=64",
    "model.frame_step=64",
    "model.frequency_mask_width=2",
    "model.time_mask_width=2",
    "train.epochs=1",
    "train.batch_size=16",
    "train.augment_shift=200",
]
TINY_CNN = [*TINY_AUDIO, "model.filters=[4]"]
TINY_LSTM = [*TINY_AUDIO, "model.units=[4]"]
TONES = {"low": 300.0, "mid": 900.0, "high": 2000.0}  # one pitch per class
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)


def _write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    """16-bit PCM samples (frames x channels, or frames) as a WAV file."""
    frames = samples.reshape(len(samples), -1) if samples.size else samples.reshape(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(frames.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames.astype("<i2").tobytes())
    return path


def _tone(pitch: float, rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A sine tone near `pitch` Hz at a random level and phase, as 16-bit samples."""
    times = np.arange(int(rate * seconds)) / rate
    level = rng.uniform(0.2, 0.8)
    return level * 32767 * np.sin(2 * np.pi * pitch * rng.uniform(0.97, 1.03) * times + rng.uniform(0, 6))


def _tone_folder(root: Path, per_class: int, splits: tuple[str, ...] = ()) -> Path:
    """One sub-folder of tones per class, inside each of `splits` (or at the top when none). Every
    fifth file is recorded at 16 kHz (resampled when read) and every seventh in stereo (averaged)."""
    rng = np.random.default_rng(len(splits))
    for split in splits or ("",):
        for name, pitch in TONES.items():
            for index in range(per_class):
                rate = 16000 if index % 5 == 0 else 8000
                samples = _tone(pitch, rate, rng.uniform(0.15, 0.35), rng)
                if index % 7 == 3:
                    samples = np.stack([samples, samples], axis=1)
                _write_wav(root / split / name / f"{index:03d}.wav", samples, rate)
    return root


def _serve(saved_model: Path, waveforms: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    (outputs,) = serve(**{input_name: tf.constant(waveforms, dtype=tf.float32)}).values()
    return outputs.numpy()


def _run_pipeline(folder: Path, experiment: str, data: Path, tiny: list[str]) -> dict:
    """`deeparch run` of `experiment` on the audio folder `data`, in a store of its own under
    `folder`: the stage runs by stage, where the SavedModel went, the store's folder."""
    from pipelines.cli import main

    out = folder / "served"
    with shared_store(folder) as uri:
        overrides = ["data.source=audio", f"data.path={data}", *tiny, "--out", str(out)]
        assert main(["run", "-e", experiment, *overrides]) == 0
        runs = {run.data.tags["stage"]: run for run in all_runs(uri)}
    return {"runs": runs, "out": out, "store": folder / "mlruns", "uri": uri}


@pytest.fixture(scope="module")
def split_folders_run(tmp_path_factory) -> dict:
    """`cnn-speech` on a folder with train/ and test/ split folders, run once for the module."""
    folder = tmp_path_factory.mktemp("speech")
    split = _tone_folder(folder / "tones_split", per_class=12, splits=("train", "test"))
    ran = _run_pipeline(folder, "cnn-speech", split, TINY_CNN)
    mlflow.set_tracking_uri(ran["uri"])  # the tests read this store
    return ran


def _sizes(prepare_run) -> dict[str, int]:
    params = prepare_run.data.params
    return {split: int(params[f"dataset.size.{split}"]) for split in ("train", "validation", "test")}


def test_audio_folder_with_split_folders_keeps_them_through_all_four_stages(split_folders_run):
    mlflow.set_tracking_uri(split_folders_run["uri"])
    runs = split_folders_run["runs"]
    assert set(runs) == {"pipeline", "prepare", "train", "evaluate", "export"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    params = runs["prepare"].data.params
    assert _sizes(runs["prepare"]) == {"train": 32, "validation": 4, "test": 36}, (
        "test/ kept, validation carved"
    )
    assert params["dataset.source"] == "audio" and params["dataset.num_classes"] == "3"
    assert params["dataset.input_shape"] == "[2000]", "0.25 s at 8 kHz"
    assert "test_accuracy" in runs["evaluate"].data.metrics
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5


def test_audio_folder_without_split_folders_is_split_by_seed(store, cli, tmp_path):
    folder = _tone_folder(tmp_path / "tones", per_class=20)
    status, _, error = cli("prepare", "-e", "lstm-speech", *_folder_of(folder), *TINY_LSTM)
    assert status == 0, error
    (prepare,) = all_runs(store)
    assert _sizes(prepare) == {"train": 43, "validation": 5, "test": 12}
    again = load_dataset(DataConfig(source="audio", path=str(folder), audio_seconds=0.25))
    assert again.digest == prepare.data.params["dataset.digest"], "same files, same split"


@pytest.mark.slow
def test_audio_folder_without_split_folders_runs_all_four_stages_with_an_lstm(tmp_path):
    ran = _run_pipeline(tmp_path, "lstm-speech", _tone_folder(tmp_path / "tones", per_class=20), TINY_LSTM)
    runs = ran["runs"]
    assert _sizes(runs["prepare"]) == {"train": 43, "validation": 5, "test": 12}
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5
    artifacts = {
        item.path for item in mlflow.MlflowClient(ran["uri"]).list_artifacts(runs["evaluate"].info.run_id)
    }
    assert "spectrograms.png" in artifacts


def test_clips_are_resampled_averaged_padded_and_stored_as_16_bit_samples(tmp_path):
    folder = _tone_folder(tmp_path / "tones", per_class=20)
    dataset = load_dataset(
        DataConfig(source="audio", path=str(folder), audio_seconds=0.25), tmp_path / "store"
    )
    assert dataset.splits["train"].stored_dtype == "int16" and dataset.spec.sample_rate == 8000
    clips = dataset.arrays("train").x
    assert clips.shape[1:] == (2000,) and clips.dtype == np.float32
    assert np.abs(clips).max() < 1.0 and np.abs(clips).max() > 0.1
    # Clips shorter than 0.25 s end in silence; the 16 kHz ones were resampled, not sped up: every
    # clip's strongest frequency is one of the three tones.
    assert (clips[:, -1] == 0).any()
    spectrum = np.abs(np.fft.rfft(clips, axis=1))
    strongest = spectrum.argmax(axis=1) * 8000 / 2000
    assert all(min(abs(hz - pitch) for pitch in TONES.values()) < 80 for hz in strongest)


def test_the_saved_model_reads_raw_waveforms_as_the_keras_model_does(split_folders_run):
    mlflow.set_tracking_uri(split_folders_run["uri"])
    train = split_folders_run["runs"]["train"]
    waveforms = np.random.default_rng(3).uniform(-0.5, 0.5, (5, 2000)).astype(np.float32)
    keras_model = mlflow.tensorflow.load_model(train.data.tags["model_uri"])
    served = _serve(split_folders_run["out"], waveforms)
    np.testing.assert_allclose(served, np.asarray(keras_model(waveforms)), atol=1e-5)
    assert served.shape == (5, 3)
    summary = mlflow.artifacts.load_text(f"runs:/{train.info.run_id}/model_summary.txt")
    assert "log_mel" in summary and "mel_normalization" in summary and "spectrogram_masking" in summary


def test_evaluate_logs_test_spectrograms_with_true_and_predicted_classes(split_folders_run):
    evaluate = split_folders_run["runs"]["evaluate"]
    client = mlflow.MlflowClient(split_folders_run["uri"])
    artifacts = {item.path for item in client.list_artifacts(evaluate.info.run_id)}
    assert "spectrograms.png" in artifacts and "confusion_matrix.png" in artifacts


def _tiny_audio_model(architecture: str, **augmentation):
    """A built model on 0.25 s clips at 8 kHz, its front end adapted on random waveforms."""
    import models

    spec = DataSpec(input_shape=(2000,), num_classes=3, sample_rate=8000)
    waveforms = np.random.default_rng(0).normal(0, 0.1, (8, 2000)).astype(np.float32)
    front_end = adapt_spectrogram_statistics(
        waveforms, 8000, AudioFrontEnd(mel_bins=8, frame_length=64, frame_step=64, **augmentation)
    )
    hparams = {"filters": [4]} if architecture == "cnn" else {"units": [4]}
    return models.build(architecture, spec, audio=front_end, **hparams), waveforms


@pytest.mark.parametrize("architecture", ["cnn", "rnn"])
def test_augmentation_acts_in_training_only_and_an_example_does_not_depend_on_its_batch(architecture):
    model, waveforms = _tiny_audio_model(
        architecture,
        noise_stddev=0.05,
        frequency_masks=2,
        frequency_mask_width=3,
        time_masks=2,
        time_mask_width=4,
    )
    served = np.asarray(model(waveforms, training=False))
    np.testing.assert_array_equal(served, np.asarray(model(waveforms, training=False)))
    assert not np.allclose(served, np.asarray(model(waveforms, training=True)), atol=1e-6)
    # One clip alone, or beside a clip ten times louder, gets the same output.
    louder = np.concatenate([waveforms[:1], 10 * waveforms[1:2]])
    np.testing.assert_allclose(np.asarray(model(louder[:1]))[0], np.asarray(model(louder))[0], atol=1e-6)


def _folder_with(root: Path, name: str, content: bytes | np.ndarray, rate: int = 8000) -> Path:
    _tone_folder(root, per_class=3)
    target = root / "low" / name
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        _write_wav(target, content, rate)
    return root


def _eight_bit_wav(root: Path) -> Path:
    _tone_folder(root, per_class=3)
    with wave.open(str(root / "mid" / "eight_bit.wav"), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(bytes(range(256)))
    return root


def _folder_of(root: Path) -> list[str]:
    return ["data.source=audio", f"data.path={root}"]


BAD_AUDIO = {
    "undecodable WAV": (
        lambda tmp: _folder_of(_folder_with(tmp / "f", "broken.wav", b"RIFF0000 this is not a wave file")),
        ["data.path", "broken.wav", "cannot be decoded", "allowed: 16-bit PCM .wav files"],
    ),
    "empty WAV file": (
        lambda tmp: _folder_of(_folder_with(tmp / "f", "empty.wav", b"")),
        ["data.path", "empty.wav", "is empty (0 bytes)"],
    ),
    "WAV without samples": (
        lambda tmp: _folder_of(_folder_with(tmp / "f", "silent.wav", np.zeros(0))),
        ["data.path", "silent.wav", "holds no samples"],
    ),
    "8-bit WAV": (
        lambda tmp: _folder_of(_eight_bit_wav(tmp / "f")),
        ["data.path", "eight_bit.wav", "Can only read 16-bit WAV files", "allowed: 16-bit PCM"],
    ),
    "sample rate too low": (
        lambda tmp: [*_folder_of(_tone_folder(tmp / "f", per_class=3)), "data.sample_rate=100"],
        ["data.sample_rate", "100", "greater than or equal to 1000"],
    ),
    "no audio seconds": (
        lambda tmp: [*_folder_of(_tone_folder(tmp / "f", per_class=3)), "data.audio_seconds=0"],
        ["data.audio_seconds", "0", "greater than 0"],
    ),
    "frame step beyond the frame": (
        lambda tmp: [*_folder_of(_tone_folder(tmp / "f", per_class=3)), "model.frame_step=512"],
        ["frame_step 512", "frame_length 256", "allowed: frame_step <= frame_length"],
    ),
    "masks as wide as the spectrogram": (
        lambda tmp: [*_folder_of(_tone_folder(tmp / "f", per_class=3)), "model.frequency_mask_width=40"],
        ["frequency_mask_width 40", "allowed: frequency_mask_width < mel_bins"],
    ),
}


def test_each_bad_audio_input_exits_2_naming_it_before_any_run(store, cli, tmp_path):
    assert_each_refused_before_any_run(store, cli, tmp_path, "cnn-speech", BAD_AUDIO)


def test_an_mlp_on_audio_is_refused_naming_the_models_that_read_audio(store, cli, tmp_path):
    folder = _tone_folder(tmp_path / "tones", per_class=3)
    status, _, error = cli("run", "-e", "mlp-digits", *_folder_of(folder), "data.audio_seconds=0.25")
    assert status == 2
    assert "model.architecture: 'mlp'" in error and "allowed for audio: rnn, lstm, cnn" in error
    assert all_runs(store) == []


def test_spoken_digits_without_espeak_ng_exits_2_saying_how_to_install_it(store, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng there
    status, _, error = cli("prepare", "-e", "cnn-speech", f"data.data_dir={tmp_path / 'tfds'}")
    assert status == 2, error
    assert "spoken_digits" in error and "espeak-ng" in error and "apt-get install espeak-ng" in error
    assert all_runs(store) == []


@pytest.mark.parametrize("experiment", ["cnn-speech", "lstm-speech"])
def test_shipped_speech_experiments_read_spoken_digits_with_train_only_augmentation_and_early_stopping(
    experiment,
):
    config = load_experiment(experiment)
    assert config.data.name == "spoken_digits" and config.data.source == "tfds"
    assert config.model.time_masks and config.model.frequency_masks
    assert config.train.augment_shift and config.tune.space
    # A budget that adapts: stop on validation loss, keep the best epoch, a cap well above it.
    assert config.train.patience and config.train.restore_best == "val_loss"
    assert config.train.epochs >= 4 * config.train.patience


def test_no_voice_of_the_spoken_digits_test_split_is_heard_in_training():
    from pipelines.datasets.spoken_digits import RECORDED_VOICES, speakers

    train, test = speakers("train"), speakers("test")
    assert not {speaker.name for speaker in train} & {speaker.name for speaker in test}
    # A recorded voice is one person at every replay rate: all of them in one split.
    voices = {
        split: {(s.synthesiser, s.voice) for s in group}
        for split, group in (("train", train), ("test", test))
    }
    assert not voices["train"] & voices["test"]
    assert {synthesiser for synthesiser, _ in voices["test"]} == {"espeak-ng", *RECORDED_VOICES}
    assert len(train) >= 100 and len(test) >= 40, "many speakers, not a handful"


def test_spoken_digits_leave_out_a_missing_synthesiser_or_voice_and_say_which(monkeypatch, tmp_path):
    import pipelines.datasets.spoken_digits as spoken_digits

    real_which = shutil.which
    monkeypatch.setattr(
        spoken_digits.shutil, "which", lambda name: None if name == "flite" else real_which(name)
    )
    assert spoken_digits.available_voices("flite") == set()
    monkeypatch.setattr(spoken_digits, "FESTIVAL_VOICE_DIRS", (str(tmp_path),))
    (tmp_path / "english" / "kal_diphone").mkdir(parents=True)
    assert spoken_digits.available_voices("festival") == (
        {"kal_diphone"} if real_which("festival") else set()
    )
    assert {"flite:awb", "flite:slt"} <= set(spoken_digits.missing_voices())
    assert "without flite:kal16, flite:rms, flite:slt, flite:awb" in spoken_digits.missing_note()
    assert "install flite: apt-get install flite" in spoken_digits.missing_note()
    recorded = {name: spoken_digits.available_voices(name) for name in spoken_digits.RECORDED_VOICES}
    assert all(speaker.synthesiser != "flite" for speaker in spoken_digits.speakers("test", recorded))


@needs_espeak
@pytest.mark.parametrize("synthesiser", ["espeak-ng", "flite", "festival"])
def test_spoken_digits_clips_are_one_word_recorded_in_a_room(synthesiser, tmp_path):
    from pipelines.datasets.spoken_digits import SAMPLE_RATE, available_voices, plan, record

    if not (shutil.which(synthesiser) if synthesiser == "espeak-ng" else available_voices(synthesiser)):
        pytest.skip(f"{synthesiser} is not installed here")
    clips = [
        clip for clip in plan("test", np.random.default_rng(0)) if clip["speaker"].synthesiser == synthesiser
    ]
    clear = [clip for clip in clips if clip["snr_db"] > 25 and clip["rt60"] == 0.0 and clip["speed"] < 1.0]
    trimmed = next(clip for clip in clear if clip["trimmed"])
    filled = next(clip for clip in clear if not clip["trimmed"])
    if synthesiser == "festival":
        from pipelines.datasets.spoken_digits import _festival_batch

        _festival_batch([trimmed], tmp_path)
        _festival_batch([filled], tmp_path)
    recorded = {}
    for name, clip in (("trimmed", trimmed), ("filled", filled)):
        recorded[name] = audio = record(**clip, folder=tmp_path)
        assert audio.shape == (SAMPLE_RATE,) and audio.dtype == np.int16
        envelope = np.convolve(np.abs(audio.astype(float)), np.ones(400) / 400, mode="same")
        loud = np.flatnonzero(envelope > 0.1 * envelope.max())
        assert 0.1 * SAMPLE_RATE < loud[-1] - loud[0] < SAMPLE_RATE, "a word, not silence or noise"
        assert 0.5 * clip["peak"] * 32768 < np.abs(audio).max() < 1.6 * clip["peak"] * 32768 + 200
    # A trimmed recording shorter than the window ends in digital silence, as a padded file does;
    # a filled one has room noise to its last sample.
    assert np.all(recorded["trimmed"][-50:] == 0) and np.any(recorded["filled"][-50:] != 0)


@needs_espeak
@pytest.mark.slow
def test_embedded_spoken_digits_are_generated_with_disjoint_speakers():
    import tensorflow_datasets as tfds

    import pipelines.datasets.spoken_digits  # noqa: F401 - registers the builder

    dataset = load_dataset(DataConfig(name="spoken_digits"))
    assert dataset.sizes() == {"train": 2592, "validation": 288, "test": 640}
    assert dataset.spec.sample_rate == 8000 and dataset.spec.input_shape == (8000,)
    voices = {
        split: {
            example["speaker"].decode() for example in tfds.as_numpy(tfds.load("spoken_digits", split=split))
        }
        for split in ("train", "test")
    }
    assert len(voices["train"]) == 104 and len(voices["test"]) == 48 and not voices["train"] & voices["test"]
