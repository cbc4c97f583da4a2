"""`cnn-speech`'s shipped defaults on words they were not tuned on: ten command words (yes, no, up,
down, left, right, stop, go, on, off) said by `spoken_digits`' voices in its simulated rooms, and
written as a WAV folder with `train/` and `test/` (the test split's voices unheard in training),
read through `data.source=audio` as a user's recordings are.

    .venv/bin/python benchmarks/speech_words.py                    # seeds 0 1 2
    .venv/bin/python benchmarks/speech_words.py --seeds 0
    .venv/bin/python benchmarks/speech_words.py train.epochs=1 --seeds 0       # a quick check
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from common import (
    RESULTS_DIR,
    announce_machine,
    describe_load,
    machine,
    seeds_parser,
    seeds_row,
    write_json,
)
from mnist1d_table import run_experiment
from speech_table import markdown_table

WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go", "on", "off")
SEED = 7


def write_word_folder(folder: Path) -> int:
    """The command words as `folder/{train,test}/WORD/NNNNN.wav`, 8 kHz 16-bit; the clip count."""
    import pipelines.datasets.spoken_digits as spoken_digits

    recorded = {name: spoken_digits.available_voices(name) for name in spoken_digits.RECORDED_VOICES}
    rng, count = np.random.default_rng(SEED), 0
    for split in ("train", "test"):
        clips = [
            {**clip, "word": WORDS[spoken_digits.WORDS.index(clip["word"])]}
            for clip in spoken_digits.plan(split, rng, recorded)
        ]
        for index, (clip, samples) in enumerate(zip(clips, spoken_digits.record_all(clips), strict=True)):
            path = folder / split / clip["word"] / f"{index:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as writer:
                writer.setnchannels(1)
                writer.setsampwidth(2)
                writer.setframerate(spoken_digits.SAMPLE_RATE)
                writer.writeframes(samples.astype("<i2").tobytes())
        count += len(clips)
    return count


def main(argv: list[str] | None = None) -> int:
    """Write the word folder, run cnn-speech on it per seed; print the table and write the JSON."""
    parser = seeds_parser(__doc__.splitlines()[0], ("cnn-speech",), RESULTS_DIR / "speech_words.json")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch run`")
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)

    reference = announce_machine()
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="speech-words-") as scratch:
        scratch = Path(scratch)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
        clips = write_word_folder(scratch / "words")
        print(f"{clips} clips of command words written ({time.perf_counter() - started:.0f} s)", flush=True)
        overrides = ["data.source=audio", f"data.path={scratch / 'words'}", *arguments.overrides]
        for experiment in arguments.experiments:
            result = run_experiment(experiment, arguments.seeds, overrides, scratch, measure_fit=True)
            rows.append(seeds_row(result))
    total = time.perf_counter() - started

    table = markdown_table(rows, ", command words")
    print(table)
    print(f"total {total:.0f} s; load {describe_load()}")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "seeds": arguments.seeds,
            "clips": clips,
            "total_seconds": total,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
