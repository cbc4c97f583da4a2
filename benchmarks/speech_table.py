"""The shipped speech experiments on the embedded `spoken_digits` (espeak-ng, flite and festival
voices in simulated rooms; the test split's voices are never heard in training), with how long the
dataset takes to synthesise and how well each model fits its train split without augmentation.

`cnn-speech` and `lstm-speech` run through the whole pipeline once per seed (mnist1d_table.py's
`run_experiment`: every stage forced, a fresh MLflow store) with their shipped defaults. The
dataset is first generated into a fresh TFDS folder, timed (the synthesisers, the simulated
recording and TFDS' writing, together), and then prepared once and shared by every run. Needs
espeak-ng (flite and festival where installed).

    .venv/bin/python benchmarks/speech_table.py                  # 2 experiments x 3 seeds
    .venv/bin/python benchmarks/speech_table.py --experiments cnn-speech --seeds 0
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import (
    RESULTS_DIR,
    accuracy_cells,
    announce_machine,
    describe_load,
    machine,
    seeds_parser,
    seeds_row,
    train_time_verdict,
    write_json,
)
from mnist1d_table import run_experiment

EXPERIMENTS = ("cnn-speech", "lstm-speech")
TARGET_TRAIN_SECONDS = 300.0  # issue 14: each run under 5 minutes of training on 2 cores


def generation_seconds() -> tuple[float, int]:
    """Seconds to synthesise `spoken_digits` into the (fresh) TFDS folder, and its number of clips."""
    import tensorflow_datasets as tfds

    import pipelines.datasets.spoken_digits  # noqa: F401 - registers the builder

    builder = tfds.builder("spoken_digits")
    started = time.perf_counter()
    builder.download_and_prepare()
    return time.perf_counter() - started, sum(split.num_examples for split in builder.info.splits.values())


def markdown_table(rows: list[dict], label: str = "") -> str:
    """One row per experiment (`seeds_row` rows measured with `measure_fit`): test accuracy, its
    seeds, the augmentation-free train accuracy, the epochs early stopping kept, train seconds."""
    lines = [
        "| experiment | test accuracy, mean ± std | per seed | train accuracy without augmentation "
        "| epochs (early stopping) | train s, mean (max) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        accuracy, per_seed, seconds = accuracy_cells(row)
        fit = " / ".join(f"{run['train_accuracy']:.1%}" for run in row["runs"])
        epochs = " / ".join(str(run["epochs"]) for run in row["runs"])
        lines.append(
            f"| {row['experiment']}{label} | {accuracy} | {per_seed} | {fit} | {epochs} | {seconds} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate the dataset, run both experiments per seed; print the table and write the JSON."""
    parser = seeds_parser(__doc__.splitlines()[0], EXPERIMENTS, RESULTS_DIR / "speech_table.json")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch run`")
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)

    reference = announce_machine()
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="speech-table-") as scratch:
        scratch = Path(scratch)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
        os.environ["TFDS_DATA_DIR"] = str(scratch / "tfds")  # read when TFDS is first imported
        generated, clips = generation_seconds()
        print(
            f"spoken_digits: {clips} clips synthesised in {generated:.0f} s (load {describe_load()})",
            flush=True,
        )
        for experiment in arguments.experiments:
            result = run_experiment(
                experiment, arguments.seeds, arguments.overrides, scratch, measure_fit=True
            )
            rows.append(seeds_row(result))
    total = time.perf_counter() - started

    print(f"\nTest accuracy on spoken_digits (unseen voices), seeds {' '.join(map(str, arguments.seeds))}")
    table = markdown_table(rows)
    print(table)
    print(train_time_verdict(rows, TARGET_TRAIN_SECONDS))
    print(f"total {total:.0f} s; load {describe_load()}")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "seeds": arguments.seeds,
            "generation_seconds": generated,
            "generated_clips": clips,
            "total_seconds": total,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
