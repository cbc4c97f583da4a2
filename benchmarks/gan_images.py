"""What the pipeline costs a GAN: `gan-images` epochs in the train stage against plain Keras.

A seeded folder of pictures (ten classes of drawn shapes, `data_scale.image_folder`) is read once
per size (32 and 64 px) by the pipeline's data layer; then, interleaved in one process,

  (a) pipeline: `pipelines.runner.train(config)`, i.e. `deeparch train -e gan-images
      data.path=FOLDER data.image_size=[S,S]` through the Python API, with everything it does:
      an MLflow run in a fresh sqlite store, the NaN guard, the epochs' metrics, a sample grid
      every `train.sample_every` epochs (2) logged as an MLflow image, checkpoints;
  (b) plain: the same conditional DCGAN (`models.build("gan", ...)` with the experiment's
      settings: the project's `GAN`, whose `train_step` is keras-io's DCGAN one) compiled the
      same way and `fit` on `from_tensor_slices` of the same training and validation arrays
      (cache, seeded shuffle, batch, prefetch), same batch size, no callback, no tracking.

Each side's epoch is timed by one callback that comes last, from its `on_epoch_begin` to its
`on_epoch_end` after every other callback's (validation, metrics, sample grids, checkpoints
included); the first epoch of each `fit` (tracing) is left out. Blocks alternate a/b, b/a, ...
so that a shared machine's load falls on both alike; the median epoch of each side and their
ratio (target <= 1.1) are the result, with each epoch's CPU time (all threads) as the
load-robust cross-check.

    .venv/bin/python benchmarks/gan_images.py                        # 1,000 pictures, 32 and 64 px
    .venv/bin/python benchmarks/gan_images.py --sizes 32 --repeats 1 train.sample_every=0
    .venv/bin/python benchmarks/gan_images.py --render benchmarks/results/gan_images.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, announce_machine, describe_load, load_average, machine, render, write_json

TARGET_RATIO = 1.1
EXPERIMENT = "gan-images"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Sizes, pictures, epochs per block, repeats, where to write and overrides for both sides."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="picture sides in pixels")
    parser.add_argument("--images", type=int, default=1000, help="pictures in the generated folder")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per block; the first is not timed")
    parser.add_argument("--repeats", type=int, default=2, help="a/b block pairs per size")
    parser.add_argument("--workdir", type=Path, help="keep the generated folder here (default: temporary)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "gan_images.json")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch train`")
    arguments = parser.parse_args(argv)
    if arguments.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch of each block is not timed")
    return arguments


def epoch_timer():
    """A callback that records each epoch's wall and CPU seconds, and the seconds the other
    callbacks spend at its end (`hooked`); put it last, so that an epoch's time includes them."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self.callbacks: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.callbacks.append(0.0)
            self._started = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.wall.append(time.perf_counter() - self._started[0])
            self.cpu.append(time.process_time() - self._started[1])

        def hooked(self, callback: keras.callbacks.Callback) -> keras.callbacks.Callback:
            """`callback`, its `on_epoch_end` timed into this epoch's callback seconds."""
            original = callback.on_epoch_end

            def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.callbacks[-1] += time.perf_counter() - started

            callback.on_epoch_end = timed
            return callback

    return EpochTimer()


def pipeline_epochs(config, dataset):
    """`deeparch train` through the API, its `fit` given the timer as its last callback."""
    import keras

    from pipelines import runner

    keras.backend.clear_session()
    timer = epoch_timer()
    original_fit = keras.Model.fit

    def timed_fit(model, *args, **kwargs):
        kwargs["callbacks"] = [*map(timer.hooked, kwargs.get("callbacks", [])), timer]
        return original_fit(model, *args, **kwargs)

    keras.Model.fit = timed_fit
    try:
        runner.train(config, dataset)
    finally:
        keras.Model.fit = original_fit
    return timer


def plain_epochs(config, spec, train, validation):
    """Plain Keras: the same GAN built from the experiment's settings, `fit` on tf.data over arrays."""
    import dataclasses

    import keras
    from overhead import plain_dataset

    import models

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    # A GAN learns the pictures' distribution; the labels only condition it (as in the train stage).
    spec = dataclasses.replace(spec, task="generation")
    model = models.build(config.architecture, spec, **config.hparams())
    model.compile()  # each network's Adam(β₁ = 0.5) at its configured rate, as the train stage does
    batch_size = config.train.batch_size
    timer = epoch_timer()
    model.fit(
        plain_dataset(train.x, train.y, batch_size, config.seed, shuffle=True),
        validation_data=plain_dataset(validation.x, validation.y, batch_size, config.seed, shuffle=False),
        epochs=config.train.epochs,
        callbacks=[timer],
        shuffle=False,
        verbose=0,
    )
    return timer


def measure_size(size: int, folder: Path, arguments: argparse.Namespace) -> dict:
    """Interleaved pipeline and plain blocks at one picture size; every timed epoch and the medians."""
    from pipelines import tracking
    from pipelines.config import load_experiment
    from pipelines.data import load_dataset

    config = load_experiment(
        EXPERIMENT,
        [
            f"data.path={folder}",
            f"data.image_size=[{size},{size}]",
            f"train.epochs={arguments.epochs}",
            *arguments.overrides,
        ],
    )
    tracking.configure(config)
    dataset = load_dataset(config.data)
    # The plain side gets the splits as arrays, as a notebook would have them.
    train, validation = dataset.arrays("train"), dataset.arrays("validation")
    print(
        f"{size} px: {len(train.y)} training and {len(validation.y)} validation pictures, batch "
        f"{config.train.batch_size}, {config.train.epochs} epochs a block, sample grid every "
        f"{config.train.sample_every} (load {describe_load()})",
        flush=True,
    )
    sides = {
        "pipeline": lambda: pipeline_epochs(config, dataset),
        "plain": lambda: plain_epochs(config, dataset.spec, train, validation),
    }
    epochs: dict[str, list[dict]] = {"pipeline": [], "plain": []}
    for repeat in range(arguments.repeats):
        order = ("pipeline", "plain") if repeat % 2 == 0 else ("plain", "pipeline")
        for side in order:
            load = load_average()
            timer = sides[side]()
            timed = [
                {
                    "block": repeat + 1,
                    "epoch": index + 2,
                    "seconds": wall,
                    "cpu_seconds": cpu,
                    "callback_seconds": hooks,
                    "load_average": load,
                }
                for index, (wall, cpu, hooks) in enumerate(
                    zip(timer.wall[1:], timer.cpu[1:], timer.callbacks[1:], strict=True)
                )
            ]
            epochs[side] += timed
            shown = ", ".join(
                f"{epoch['seconds']:.2f} (CPU {epoch['cpu_seconds']:.2f}, "
                f"callbacks {epoch['callback_seconds']:.2f})"
                for epoch in timed
            )
            print(
                f"{size} px, block {repeat + 1}, {side}: epochs 2-{len(timer.wall)} {shown} s "
                f"(load {load:.2f})",
                flush=True,
            )
    row = {"size": size, "train_examples": len(train.y), "validation_examples": len(validation.y)}
    for side, timed in epochs.items():
        row[f"{side}_median_seconds"] = statistics.median(epoch["seconds"] for epoch in timed)
        row[f"{side}_mean_seconds"] = statistics.fmean(epoch["seconds"] for epoch in timed)
        row[f"{side}_median_cpu_seconds"] = statistics.median(epoch["cpu_seconds"] for epoch in timed)
        row[f"{side}_mean_callback_seconds"] = statistics.fmean(epoch["callback_seconds"] for epoch in timed)
    row["ratio"] = row["pipeline_median_seconds"] / row["plain_median_seconds"]
    row["mean_ratio"] = row["pipeline_mean_seconds"] / row["plain_mean_seconds"]
    row["cpu_ratio"] = row["pipeline_median_cpu_seconds"] / row["plain_median_cpu_seconds"]
    row["load_average"] = statistics.fmean(
        epoch["load_average"] for timed in epochs.values() for epoch in timed
    )
    row["epochs"] = epochs
    return row


def size_table(rows: list[dict]) -> str:
    """One line per size: median epoch seconds of each side, the ratios, the load; then the verdict."""
    lines = [
        "| pictures | training pictures | pipeline epoch s | plain Keras epoch s | ratio | mean-epoch ratio "
        "| CPU-time ratio | pipeline callbacks s/epoch | epochs a side | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['size']}x{row['size']} | {row['train_examples']} | "
            f"{row['pipeline_median_seconds']:.2f} | "
            f"{row['plain_median_seconds']:.2f} | {row['ratio']:.3f} | {row['mean_ratio']:.3f} | "
            f"{row['cpu_ratio']:.3f} | {row['pipeline_mean_callback_seconds']:.2f} | "
            f"{len(row['epochs']['pipeline'])} | {row['load_average']:.1f} |"
        )
    worst = max(row["ratio"] for row in rows)
    verdict = "met" if worst <= TARGET_RATIO else "MISSED"
    lines += [
        "",
        f"Highest ratio of median epochs, pipeline / plain: **{worst:.3f}** "
        f"(target <= {TARGET_RATIO}): {verdict}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate the folder, measure each size, print the table and write the JSON results."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"]:  # the table of older results files: --render FILE...
        render(argv[1:], lambda record: size_table(record["sizes"]))
        return 0
    arguments = parse_arguments(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    reference = announce_machine()
    scratch_holder = tempfile.TemporaryDirectory(prefix="gan-images-")
    scratch = Path(scratch_holder.name)
    # A fresh store per invocation, set before the pipeline configures MLflow.
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    from data_scale import image_folder

    from pipelines.progress import quiet_libraries

    quiet_libraries()
    workdir = arguments.workdir or scratch
    workdir.mkdir(parents=True, exist_ok=True)
    folder = image_folder(workdir, arguments.images)
    load_before = describe_load()
    rows = [measure_size(size, folder, arguments) for size in arguments.sizes]
    load_after = describe_load()
    scratch_holder.cleanup()
    table = size_table(rows)
    print(f"\n{EXPERIMENT}, {arguments.images} pictures, {arguments.repeats} blocks a side\n{table}")
    print(f"load {load_before} before, {load_after} after")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "experiment": EXPERIMENT,
            "images": arguments.images,
            "epochs_per_block": arguments.epochs,
            "repeats": arguments.repeats,
            "overrides": arguments.overrides,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "sizes": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
