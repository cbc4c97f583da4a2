"""What the pipeline costs: `deeparch train` against a plain Keras script doing the same work.

Both sides train the same model (`models.build`, the pure-Keras builder), on the same arrays, for
the same epochs and batch size, with the same tf.data settings (cache, seeded shuffle, batch,
the same train-only augmentation, prefetch), the same optimizer and schedule, the same
`jit_compile` and `steps_per_execution`, with validation after every epoch:

  (a) pipeline: `pipelines.runner.train(config)`, i.e. `deeparch train` through the Python API,
      with everything it does: an MLflow run in a fresh sqlite store, params, the NaN guard,
      the epochs' metrics written in one synchronous batch at each checkpoint, a checkpoint
      after the first epoch and then every `train.checkpoint_seconds` (10 s by default);
  (b) plain: `model.fit(...)` with no callback and no tracking (verbose=0).

The time compared is the `fit` call (compilation included): the train run's `train_seconds`
metric for (a), the same stopwatch around `fit` for (b). What the train stage does after `fit`
(learning-curve figure, logging the model) is reported beside it, not in the ratio. Runs are
interleaved a/b/a/b... in one process after one warm-up fit; the median of the per-pair ratios
a/b is the result (target <= 1.05). On a shared machine wall time swings with the other
processes' load, so the process CPU time of each `fit` (all its threads) is given too: its
ratio is the load-robust cross-check of the same overhead.

    .venv/bin/python benchmarks/overhead.py                                  # cnn-mnist1d, 3 pairs
    .venv/bin/python benchmarks/overhead.py --experiment mlp-mnist1d train.epochs=60
    .venv/bin/python benchmarks/overhead.py train.jit_compile=false          # what XLA brings
    .venv/bin/python benchmarks/overhead.py --parts                          # what each part costs
    .venv/bin/python benchmarks/overhead.py --repeats 0 --settings train.jit_compile=false \
        train.steps_per_execution=6                                          # settings, plain fit only
    .venv/bin/python benchmarks/overhead.py --render benchmarks/results/overhead_cnn_mnist1d.json

`--parts` also times plain `fit` with one part added at a time (a synchronous MLflow metric
write every epoch, a checkpoint every epoch, the NaN guard, then the train stage's callbacks as
shipped: metrics batched and written at each checkpoint, a checkpoint per `train.checkpoint_seconds`)
to say where overhead comes from. `--settings` times plain `fit` of the experiment as configured
and with each given setting (space-separated overrides within one setting:
"train.jit_compile=false train.steps_per_execution=6"), interleaved `--repeats` times (at least
once), to choose `jit_compile` and `steps_per_execution`; give experiment overrides before
`--settings` or after `--`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, announce_machine, load_average, machine, render, write_json

TARGET_RATIO = 1.05


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Experiment, pairs, parts, JSON path and dotted overrides applied to both sides."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cnn-mnist1d", help="shipped experiment or YAML path")
    parser.add_argument("--repeats", type=int, default=3, help="a/b pairs (default 3)")
    parser.add_argument("--parts", action="store_true", help="also time plain fit plus one part at a time")
    parser.add_argument(
        "--settings", nargs="+", default=[], metavar="OVERRIDES", help="also time plain fit with each setting"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="default: benchmarks/results/overhead_<name>.json"
    )
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch train`")
    return parser.parse_args(argv)


def plain_dataset(x, y, batch_size: int, seed: int, shuffle: bool, shift: int = 0, scale: float = 0.0):
    """cache -> shuffle -> batch -> (shift/scale augmentation) -> prefetch, written out plainly."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if shuffle and (shift or scale) and x.ndim == 2:
        generator = tf.random.Generator.from_seed(seed)

        def augment(inputs, labels):
            batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
            shifts = generator.uniform([batch], -shift, shift + 1, dtype=tf.int32)
            positions = (tf.range(steps)[None, :] - shifts[:, None]) % steps
            inputs = tf.gather(inputs, positions, batch_dims=1)
            return inputs * generator.uniform([batch, 1], 1.0 - scale, 1.0 + scale), labels

        dataset = dataset.map(augment)
    return dataset.prefetch(tf.data.AUTOTUNE)


def plain_fit(config, dataset, extra_callbacks=()) -> tuple[float, float]:
    """(wall, CPU) seconds of a plain Keras `fit` of the configured model; nothing is tracked."""
    import math

    import keras

    import models

    # The plain script gets the splits as arrays, as a notebook would have them.
    train, validation = dataset.arrays("train"), dataset.arrays("validation")
    settings = config.train
    if settings.optimizer not in ("adam", "adamw"):
        raise SystemExit(f"the plain script writes out Adam and AdamW only, not {settings.optimizer!r}")
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = models.build(config.architecture, dataset.spec, **config.hparams())
    total_steps = math.ceil(len(train) / settings.batch_size) * settings.epochs
    warmup_steps = int(settings.warmup_fraction * total_steps)
    if settings.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else settings.learning_rate,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=settings.learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    elif warmup_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=settings.learning_rate, warmup_steps=warmup_steps
        )
    else:
        learning_rate = settings.learning_rate
    if settings.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate, weight_decay=settings.weight_decay, clipnorm=settings.clipnorm
        )
    else:
        optimizer = keras.optimizers.Adam(learning_rate, clipnorm=settings.clipnorm)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
        jit_compile=settings.jit_compile,
        steps_per_execution=settings.steps_per_execution,
    )
    train_data = plain_dataset(
        train.x,
        train.y,
        settings.batch_size,
        config.seed,
        shuffle=True,
        shift=settings.augment_shift,
        scale=settings.augment_scale,
    )
    validation_data = plain_dataset(
        validation.x, validation.y, settings.batch_size, config.seed, shuffle=False
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=settings.epochs,
        callbacks=list(extra_callbacks),
        shuffle=False,  # the tf.data pipeline shuffles, seeded, as in the train stage
        verbose=0,
    )
    return time.perf_counter() - started, time.process_time() - cpu_started


def pipeline_fit(config, dataset) -> tuple[float, float, float]:
    """`deeparch train` through the API: its `train_seconds` metric, the CPU seconds of its `fit`
    call and the whole stage's wall seconds."""
    import keras

    from pipelines import runner, tracking

    keras.backend.clear_session()
    cpu_seconds: list[float] = []
    original_fit = keras.Model.fit

    def timed_fit(model, *args, **kwargs):
        # The benchmark's own stopwatch on the CPU time of the stage's `fit`; nothing else changes.
        cpu_started = time.process_time()
        try:
            return original_fit(model, *args, **kwargs)
        finally:
            cpu_seconds.append(time.process_time() - cpu_started)

    keras.Model.fit = timed_fit
    try:
        started = time.perf_counter()
        result = runner.train(config, dataset)
        stage_seconds = time.perf_counter() - started
    finally:
        keras.Model.fit = original_fit
    return tracking.get_run(result.run_id).data.metrics["train_seconds"], sum(cpu_seconds), stage_seconds


def part_callbacks(part: str, scratch: Path, samples_per_epoch: int, checkpoint_seconds: float):
    """The callbacks a pipeline part adds to a plain fit (an MLflow run is opened where one is needed)."""
    import keras
    import mlflow

    from pipelines.callbacks import CheckpointEvery, MlflowEpochLogger

    backup_dir = str(scratch / f"backup-{time.monotonic_ns()}")
    if part == PARTS[0]:
        mlflow.start_run(run_name="overhead/parts")

        def write(epoch: int, logs: dict) -> None:
            mlflow.log_metrics(
                {name: float(value) for name, value in logs.items()}, step=epoch + 1, synchronous=True
            )

        return [keras.callbacks.LambdaCallback(on_epoch_end=write)]
    if part == PARTS[1]:
        return [keras.callbacks.BackupAndRestore(backup_dir)]
    if part == PARTS[2]:
        return [keras.callbacks.TerminateOnNaN()]
    mlflow.start_run(run_name="overhead/parts")
    logger = MlflowEpochLogger(samples_per_epoch)
    return [
        keras.callbacks.TerminateOnNaN(),
        logger,
        CheckpointEvery(backup_dir, seconds=checkpoint_seconds, before_save=logger.flush),
    ]


PARTS = (
    "synchronous MLflow metric write every epoch",
    "checkpoint every epoch (BackupAndRestore)",
    "TerminateOnNaN",
    "the train stage's callbacks as shipped (NaN guard, batched metrics, checkpoint_seconds)",
)


def main(argv: list[str] | None = None) -> int:
    """Interleave pipeline and plain training, print the ratios and write the JSON results."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"]:  # the table of older results files: --render FILE...
        render(
            argv[1:],
            lambda record: pairs_table(record["pairs"], record["median_ratio"], record["median_cpu_ratio"]),
        )
        return 0
    arguments = parse_arguments(argv)
    reference = announce_machine()
    scratch_holder = tempfile.TemporaryDirectory(prefix="overhead-")
    scratch = Path(scratch_holder.name)
    # A fresh store per invocation, set before the pipeline configures MLflow.
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlruns' / 'mlflow.db'}"
    (scratch / "mlruns").mkdir()

    from pipelines import tracking
    from pipelines.config import load_experiment
    from pipelines.data import load_dataset

    config = load_experiment(arguments.experiment, arguments.overrides)
    tracking.configure(config)
    dataset = load_dataset(config.data)
    json_path = arguments.json or RESULTS_DIR / f"overhead_{config.name.replace('-', '_')}.json"
    print(
        f"{config.name}: {config.train.epochs} epochs, batch {config.train.batch_size}, "
        f"jit_compile={config.train.jit_compile}, steps_per_execution={config.train.steps_per_execution}"
        + (f", overrides {' '.join(arguments.overrides)}" if arguments.overrides else ""),
        flush=True,
    )
    warmup = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 1})})
    plain_fit(warmup, dataset)

    pairs = []
    for repeat in range(arguments.repeats):
        load = load_average()
        pipeline_seconds, pipeline_cpu, stage_seconds = pipeline_fit(config, dataset)
        plain_seconds, plain_cpu = plain_fit(config, dataset)
        pairs.append(
            {
                "pipeline_fit_seconds": pipeline_seconds,
                "pipeline_fit_cpu_seconds": pipeline_cpu,
                "pipeline_stage_seconds": stage_seconds,
                "plain_fit_seconds": plain_seconds,
                "plain_fit_cpu_seconds": plain_cpu,
                "ratio": pipeline_seconds / plain_seconds,
                "cpu_ratio": pipeline_cpu / plain_cpu,
                "load_average": load,
            }
        )
        print(
            f"pair {repeat + 1}: pipeline fit {pipeline_seconds:.1f} s "
            f"(whole train stage {stage_seconds:.1f} s), "
            f"plain fit {plain_seconds:.1f} s, ratio {pairs[-1]['ratio']:.3f}, "
            f"CPU ratio {pairs[-1]['cpu_ratio']:.3f} (load {load:.2f})",
            flush=True,
        )

    parts = time_parts(config, dataset, scratch, max(1, arguments.repeats)) if arguments.parts else []
    settings = (
        time_settings(config, dataset, arguments, max(1, arguments.repeats)) if arguments.settings else []
    )
    scratch_holder.cleanup()

    if settings:
        print("\n| plain fit with | median s | runs s | vs as configured | load |")
        print("|---|---|---|---|---|")
        for row in settings:
            runs = ", ".join(f"{seconds:.1f}" for seconds in row["runs"])
            print(
                f"| {row['setting']} | {row['median_seconds']:.1f} | {runs} | {row['relative']:.3f} | "
                f"{row['load_average']:.1f} |"
            )
    median_ratio = statistics.median(pair["ratio"] for pair in pairs) if pairs else None
    median_cpu_ratio = statistics.median(pair["cpu_ratio"] for pair in pairs) if pairs else None
    table = pairs_table(pairs, median_ratio, median_cpu_ratio) if pairs else None
    if table:
        print(f"\n{config.name}, {len(pairs)} interleaved pairs\n{table}")
    if parts:
        print(f"\n{config.name}, plain fit with one part added, median of {max(1, arguments.repeats)}")
        print(
            "| part added to plain fit | plain s | with it s | ratio | CPU ratio "
            "| s in its epoch hooks per fit | share of plain fit | load |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for part in parts:
            print(
                f"| {part['part']} | {part['plain_fit_seconds']:.1f} | {part['with_part_seconds']:.1f} | "
                f"{part['ratio']:.3f} | {part['cpu_ratio']:.3f} | {part['hook_seconds']:.2f} | "
                f"{part['hook_share']:.1%} | {part['load_average']:.1f} |"
            )
    measured = {"markdown": table, "pairs": pairs, "median_ratio": median_ratio}
    measured |= {"median_cpu_ratio": median_cpu_ratio, "parts": parts, "settings": settings}
    write_results(json_path, config, arguments, reference, measured)
    return 0


def time_parts(config, dataset, scratch: Path, repeats: int) -> list[dict]:
    """Plain fit without and with each part, interleaved `repeats` times; medians, and the time
    spent inside the part's epoch hooks (`on_epoch_end`, `on_train_end`), which load hardly blurs."""
    import mlflow

    parts = []
    for part in PARTS:
        rows = []
        for _ in range(repeats):
            load = load_average()
            plain_seconds, plain_cpu = plain_fit(config, dataset)
            callbacks = part_callbacks(
                part, scratch, len(dataset.splits["train"]), config.train.checkpoint_seconds
            )
            hook_seconds = [0.0]
            for callback in callbacks:
                _time_epoch_hooks(callback, hook_seconds)
            with_part, with_part_cpu = plain_fit(config, dataset, callbacks)
            if mlflow.active_run() is not None:
                mlflow.end_run()
            rows.append(
                (
                    plain_seconds,
                    with_part,
                    with_part / plain_seconds,
                    with_part_cpu / plain_cpu,
                    hook_seconds[0],
                    load,
                )
            )
            print(
                f"part {part}: plain {plain_seconds:.1f} s, with it {with_part:.1f} s, "
                f"{hook_seconds[0]:.2f} s in its epoch hooks (load {load:.2f})",
                flush=True,
            )
        columns = list(zip(*rows, strict=True))
        plain_median = statistics.median(columns[0])
        parts.append(
            {
                "part": part,
                "plain_fit_seconds": plain_median,
                "with_part_seconds": statistics.median(columns[1]),
                "ratio": statistics.median(columns[2]),
                "cpu_ratio": statistics.median(columns[3]),
                "hook_seconds": statistics.median(columns[4]),
                "hook_share": statistics.median(columns[4]) / plain_median,
                "load_average": statistics.fmean(columns[5]),
            }
        )
    return parts


def _time_epoch_hooks(callback, spent: list[float]) -> None:
    """Add the wall seconds `callback` spends in on_epoch_end and on_train_end to `spent[0]`.

    Only those two hooks are wrapped, so Keras still sees the callback's own batch hooks (which
    decide whether it dispatches batch callbacks asynchronously)."""
    for name in ("on_epoch_end", "on_train_end"):
        original = getattr(callback, name)

        def timed(*args, original=original, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        setattr(callback, name, timed)


def pairs_table(pairs: list[dict], median_ratio: float, median_cpu_ratio: float) -> str:
    """The a/b pairs as a markdown table, then the median ratios against the target."""
    lines = [
        "| pair | pipeline fit s | plain Keras fit s | ratio | CPU s pipeline / plain | CPU ratio "
        "| whole train stage s | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, pair in enumerate(pairs, start=1):
        lines.append(
            f"| {index} | {pair['pipeline_fit_seconds']:.1f} | {pair['plain_fit_seconds']:.1f} | "
            f"{pair['ratio']:.3f} | {pair['pipeline_fit_cpu_seconds']:.1f} / "
            f"{pair['plain_fit_cpu_seconds']:.1f} | "
            f"{pair['cpu_ratio']:.3f} | {pair['pipeline_stage_seconds']:.1f} | {pair['load_average']:.1f} |"
        )
    verdict = "met" if median_ratio <= TARGET_RATIO else "MISSED"
    lines += [
        "",
        f"Median ratio pipeline / plain: **{median_ratio:.3f}** (target <= {TARGET_RATIO}): {verdict}; "
        f"median CPU-time ratio {median_cpu_ratio:.3f}.",
    ]
    return "\n".join(lines)


def time_settings(config, dataset, arguments, repeats: int) -> list[dict]:
    """Plain fit as configured and with each setting, interleaved; median seconds of each."""
    from pipelines.config import load_experiment

    variants = [("as configured", config)] + [
        (setting, load_experiment(arguments.experiment, [*arguments.overrides, *setting.split()]))
        for setting in arguments.settings
    ]
    times: dict[str, list[float]] = {label: [] for label, _ in variants}
    loads = []
    for _ in range(repeats):
        for label, variant in variants:
            loads.append(load_average())
            times[label].append(plain_fit(variant, dataset)[0])
            print(f"setting {label}: {times[label][-1]:.1f} s (load {loads[-1]:.2f})", flush=True)
    base = statistics.median(times["as configured"])
    return [
        {
            "setting": label,
            "runs": runs,
            "median_seconds": statistics.median(runs),
            "relative": statistics.median(runs) / base,
            "load_average": statistics.fmean(loads),
        }
        for label, runs in times.items()
    ]


def write_results(json_path: Path, config, arguments, reference: float, measured: dict) -> None:
    """Everything measured, as JSON, with the pairs' table (`markdown`) when there are pairs."""
    write_json(
        json_path,
        {
            **({"markdown": measured["markdown"]} if measured["markdown"] else {}),
            "experiment": config.name,
            "overrides": arguments.overrides,
            "epochs": config.train.epochs,
            "batch_size": config.train.batch_size,
            "jit_compile": config.train.jit_compile,
            "steps_per_execution": config.train.steps_per_execution,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "pairs": measured["pairs"],
            "median_ratio": measured["median_ratio"],
            "median_cpu_ratio": measured["median_cpu_ratio"],
            "parts": measured["parts"],
            "settings": measured["settings"],
        },
    )


if __name__ == "__main__":
    sys.exit(main())
