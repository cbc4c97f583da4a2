"""Does the pipeline's memory stay flat as data grows, and is it as fast as plain Keras?

For each size (2,000, 6,000 and 20,000 seeded JPEGs at 224x224, ten classes of drawn shapes over
smooth random backgrounds), in a fresh MLflow store and a process of its own:

  (a) deeparch: `deeparch run -e cnn-images data.path=FOLDER train.epochs=1`; prepare and train
      times come from the MLflow runs afterwards (the prepare run's wall time, the train run's
      `train_seconds`, i.e. its `fit` call);
  (b) plain Keras, read: one pass of `keras.utils.image_dataset_from_directory` (128x128, the
      experiment's batch size) -> map(/255) -> prefetch over the folder, reading and decoding it;
  (c) plain Keras, train: the same reading into `fit` of the same model (`models.build` from the
      cnn-images config) for one epoch, on as many training images as the pipeline's split holds
      and validating on as many, timed around `fit` as (a) is.

The peak resident memory of each process tree is sampled every 0.1 s with psutil. The issue's
targets: peak <= 2.5 GB at every size and within 1.15x between the smallest and the largest size;
prepare <= 1.5x one plain read pass; a train epoch <= 1.1x plain Keras. A CSV part then trains
`mlp-tabular` for one epoch on a generated table of 5 million rows: 20 numeric columns (one with
empty cells), three text categories (8 values with empty cells, 2,000 values, and 100,000 values,
past the vocabulary cap) and a label (about 0.9 GB), and reports its peak memory.

    .venv/bin/python benchmarks/data_scale.py                          # all sizes and the CSV
    .venv/bin/python benchmarks/data_scale.py --workdir /data/scale   # keep the generated data
    .venv/bin/python benchmarks/data_scale.py --sizes 200 --csv-rows 20000 --json /tmp/quick.json
    .venv/bin/python benchmarks/data_scale.py --repeats 2 --skip-csv  # each side twice, means
    .venv/bin/python benchmarks/data_scale.py --render benchmarks/results/data_scale.json  # its tables again

Generated data is written once under `--workdir` and reused by later invocations (default: a
temporary folder removed at the end). Each run's MLflow store is removed once it has been read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, describe_load, machine, markdown_rows, reference_seconds, render, write_json

SEED = 0
IMAGE_PIXELS = 224
SHAPES = ("circle", "square", "triangle", "cross", "ring", "star", "hexagon", "bar", "semicircle", "arrow")
CSV_FEATURES = 20
GIGABYTE = 1e9
SAMPLE_SECONDS = 0.1

PEAK_TARGET_GB = 2.5
PEAK_GROWTH_TARGET = 1.15
PREPARE_TARGET = 1.5
TRAIN_TARGET = 1.1


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Sizes, the CSV part, the scratch folder and the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 6000, 20000], help="images per folder")
    parser.add_argument("--skip-images", action="store_true", help="only the CSV part")
    parser.add_argument("--skip-csv", action="store_true", help="no CSV part")
    parser.add_argument("--csv-rows", type=int, default=5_000_000, help="rows of the CSV (default 5 million)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="generated data and stores (default: temp)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each side per size; times are their means"
    )
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "data_scale.json", help="results file")
    # Internal: the plain Keras side, run by this script in a process of its own.
    parser.add_argument("--plain", choices=["read", "fit"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# Generated data ------------------------------------------------------------------------------


def shape_outline(shape: str) -> list[tuple[float, float]]:
    """The polygon of `shape` in the unit square [-1, 1]^2 (shapes drawn as ellipses have none)."""
    if shape in ("square", "triangle", "hexagon"):
        corners = {"square": 4, "triangle": 3, "hexagon": 6}[shape]
        return [
            (math.cos(2 * math.pi * k / corners), math.sin(2 * math.pi * k / corners)) for k in range(corners)
        ]
    if shape == "star":
        return [
            (
                (1.0 if k % 2 == 0 else 0.4) * math.cos(math.pi * k / 5),
                (1.0 if k % 2 == 0 else 0.4) * math.sin(math.pi * k / 5),
            )
            for k in range(10)
        ]
    if shape == "cross":
        a = 0.3
        return [
            (-a, -1),
            (a, -1),
            (a, -a),
            (1, -a),
            (1, a),
            (a, a),
            (a, 1),
            (-a, 1),
            (-a, a),
            (-1, a),
            (-1, -a),
            (-a, -a),
        ]
    if shape == "bar":
        return [(-1, -0.2), (1, -0.2), (1, 0.2), (-1, 0.2)]
    if shape == "arrow":
        return [(-1, -0.25), (0.2, -0.25), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.25), (-1, 0.25)]
    return []


def draw_image(shape: str, rng):
    """One RGB image: a smooth random background, mild noise and one `shape` at a random place,
    size, angle and colour."""
    import numpy as np
    from PIL import Image, ImageDraw

    corners = Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8))
    background = np.asarray(corners.resize((IMAGE_PIXELS, IMAGE_PIXELS), Image.BICUBIC), dtype=np.float32)
    noisy = background + rng.normal(0.0, 6.0, background.shape)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.12, 0.32) * IMAGE_PIXELS
    cx, cy = rng.uniform(radius, IMAGE_PIXELS - radius, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(3, int(radius / 4)))
    elif shape == "semicircle":
        start = math.degrees(angle)
        draw.pieslice(box, start, start + 180, fill=colour)
    else:
        cos, sin = math.cos(angle), math.sin(angle)
        points = [
            (cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos))
            for x, y in shape_outline(shape)
        ]
        draw.polygon(points, fill=colour)
    return image


def image_folder(workdir: Path, count: int) -> Path:
    """A folder of `count` seeded JPEGs, one sub-folder per shape; written once, then reused."""
    import numpy as np

    folder = workdir / f"shapes-{count}"
    if folder.is_dir():
        return folder
    partial = workdir / f".shapes-{count}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for shape in SHAPES:
        (partial / shape).mkdir(parents=True)
    started = time.perf_counter()
    for index in range(count):
        shape = SHAPES[index % len(SHAPES)]
        image = draw_image(shape, np.random.default_rng([SEED, index]))
        image.save(partial / shape / f"{index:06d}.jpg", quality=90)
    partial.rename(folder)  # complete or absent: an interrupted generation starts again
    print(f"generated {count} images in {folder} ({time.perf_counter() - started:.0f} s)", flush=True)
    return folder


def csv_table(workdir: Path, rows: int) -> Path:
    """A seeded CSV of `rows` rows: 20 float features (5 % of `f00` empty), three text categories
    (`colour`: 8 values, 5 % empty; `city`: 2,000; `code`: 100,000) and an integer `label` (10
    classes) that a linear model can learn from the numbers and the colour; written once, in
    chunks, then reused."""
    import numpy as np
    import pandas as pd

    path = workdir / f"table-mixed-{rows}.csv"
    if path.is_file():
        return path
    partial = workdir / f".table-mixed-{rows}.csv.partial"
    rng = np.random.default_rng(SEED)
    weights = rng.normal(size=(CSV_FEATURES, 10))
    started = time.perf_counter()
    with partial.open("w") as out:
        for first in range(0, rows, 250_000):
            features = rng.normal(size=(min(250_000, rows - first), CSV_FEATURES)).astype(np.float32)
            chunk = pd.DataFrame(features, columns=[f"f{column:02d}" for column in range(CSV_FEATURES)])
            colour = rng.integers(0, 8, len(chunk))
            scores = features @ weights + rng.normal(size=(len(chunk), 10))
            scores[np.arange(len(chunk)), colour] += 1.0
            chunk["label"] = np.argmax(scores, axis=1)
            chunk.loc[rng.random(len(chunk)) < 0.05, "f00"] = np.nan
            chunk["colour"] = np.where(
                rng.random(len(chunk)) < 0.05, "", np.char.add("colour ", colour.astype(str))
            )
            chunk["city"] = np.char.add("city ", rng.integers(0, 2000, len(chunk)).astype(str))
            chunk["code"] = np.char.add("c", rng.integers(0, 100_000, len(chunk)).astype(str))
            chunk.to_csv(out, index=False, header=first == 0, float_format="%.4f")
    partial.rename(path)
    size_mb = path.stat().st_size / 1e6
    print(f"generated {path} ({size_mb:.0f} MB, {time.perf_counter() - started:.0f} s)", flush=True)
    return path


# Measuring -----------------------------------------------------------------------------------


def run_measured(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run `command`; its wall seconds and the peak resident bytes of its process tree (sampled)."""
    import psutil

    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            resident = 0
            for member in tree:
                try:
                    resident += member.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, resident)
            time.sleep(SAMPLE_SECONDS)
        status = process.wait()
    seconds = time.perf_counter() - started
    if status != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{' '.join(command)} exited with status {status}:\n{tail}")
    return seconds, peak


def warm_page_cache(folder: Path) -> None:
    """Read every file once, so that neither side pays for reading the disk cold (whichever runs
    first would, and deeparch runs first), and write what the system still holds unwritten (the
    folder just generated) to disk, so that the first measured run does not share the disk with
    that write-back."""
    for file in folder.rglob("*"):
        if file.is_file():
            file.read_bytes()
    os.sync()


def fresh_store(scratch: Path, label: str) -> tuple[Path, dict[str, str]]:
    """An empty folder with an sqlite MLflow store, and the environment that points at it.

    Each `label` must be new to this process: MLflow keeps one store (and its open sqlite
    connections) per URI, so a store removed and created again under the same path would still
    be read through the removed database's connections.
    """
    store = scratch / f"store-{label}"
    shutil.rmtree(store, ignore_errors=True)
    (store / "mlruns").mkdir(parents=True)
    uri = f"sqlite:///{store / 'mlruns' / 'mlflow.db'}"
    return store, {**os.environ, "MLFLOW_TRACKING_URI": uri, "TF_CPP_MIN_LOG_LEVEL": "2"}


def stage_times(uri: str) -> dict[str, float]:
    """Wall seconds of each stage run in the store, and the train run's `train_seconds` (its fit)."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    times: dict[str, float] = {}
    for run in client.search_runs(experiments, max_results=100):
        stage = run.data.tags.get("stage")
        if stage and run.info.end_time:
            times[f"{stage}_stage_seconds"] = (run.info.end_time - run.info.start_time) / 1000
        if stage == "prepare":
            # The shards are written before the prepare run opens (a bad file must stop the
            # pipeline before any run exists); the run records how long that took.
            times["materialise_seconds"] = run.data.metrics.get("materialise_seconds", 0.0)
            times["prepare_stage_seconds"] += times["materialise_seconds"]
        if stage == "train":
            times["train_seconds"] = run.data.metrics["train_seconds"]
    return times


def measure_pipeline(label: str, experiment: str, overrides: list[str], scratch: Path) -> dict:
    """`deeparch run` in a fresh store: wall seconds, peak memory and each stage's time."""
    store, env = fresh_store(scratch, label)
    deeparch = Path(sys.executable).with_name("deeparch")
    command = [str(deeparch), "run", "-e", experiment, *overrides]
    seconds, peak = run_measured(command, store, env, scratch / f"{label}-deeparch.log")
    measured = {"run_seconds": seconds, "peak_gb": peak / GIGABYTE, **stage_times(env["MLFLOW_TRACKING_URI"])}
    shutil.rmtree(store)  # prepared shards of the largest folder take a few GB
    return measured


def measure_plain(mode: str, folder: Path, scratch: Path) -> dict:
    """The plain Keras read pass or fit, in a process of its own: its result and peak memory."""
    result = scratch / f"plain-{mode}-{folder.name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--plain", mode, "--folder", str(folder)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    _, peak = run_measured([*command, "--result", str(result)], scratch, env, scratch / f"plain-{mode}.log")
    return {**json.loads(result.read_text()), "peak_gb": peak / GIGABYTE}


def plain_keras(mode: str, folder: Path, result: Path) -> None:
    """In the child process: one read pass over `folder`, or one epoch of `fit` on it, timed."""
    import keras
    import tensorflow as tf

    import models
    from models.spec import DataSpec
    from pipelines.config import load_experiment

    config = load_experiment("cnn-images", [f"data.path={folder}"])
    image_size, batch_size = tuple(config.data.image_size), config.train.batch_size

    def scaled(images):
        return images.map(lambda x, y: (x / 255.0, y)).prefetch(tf.data.AUTOTUNE)

    if mode == "read":
        started = time.perf_counter()
        images = keras.utils.image_dataset_from_directory(
            folder, image_size=image_size, batch_size=batch_size, shuffle=False, verbose=False
        )
        count = sum(int(labels.shape[0]) for _, labels in scaled(images))
        result.write_text(json.dumps({"seconds": time.perf_counter() - started, "images": count}))
        return
    # The pipeline's splits: test first, then validation out of the rest.
    kept = 1.0 - config.data.test_fraction
    train_share, validation_share = (
        kept * (1.0 - config.data.validation_fraction),
        kept * config.data.validation_fraction,
    )
    train, held_out = keras.utils.image_dataset_from_directory(
        folder,
        image_size=image_size,
        batch_size=batch_size,
        seed=config.seed,
        validation_split=round(1.0 - train_share, 6),
        subset="both",
        verbose=False,
    )
    total = len(train.file_paths) + len(held_out.file_paths)
    validation = held_out.take(math.ceil(validation_share * total / batch_size))
    keras.utils.set_random_seed(config.seed)
    spec = DataSpec((*image_size, 1 if config.data.grayscale else 3), num_classes=len(train.class_names))
    model = models.build(config.architecture, spec, **config.hparams())
    model.compile(
        optimizer=keras.optimizers.Adam(config.train.learning_rate, clipnorm=config.train.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
        jit_compile=config.train.jit_compile,
        steps_per_execution=config.train.steps_per_execution,
    )
    started = time.perf_counter()
    model.fit(scaled(train), validation_data=scaled(validation), epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    result.write_text(json.dumps({"seconds": seconds, "train_images": len(train.file_paths)}))


# Reporting -----------------------------------------------------------------------------------


def mean_of(measured: list[dict]) -> dict:
    """Repeats of one measurement: the mean of each figure, the highest of each peak memory."""
    keys = [key for key in measured[0] if all(isinstance(m.get(key), int | float) for m in measured)]
    values = {key: [m[key] for m in measured] for key in keys}
    return {key: max(v) if key.endswith("peak_gb") else sum(v) / len(v) for key, v in values.items()}


def verdict(value: float | None, target: float) -> str:
    """met / MISSED against an upper bound."""
    return "n/a" if value is None else "met" if value <= target else "MISSED"


def size_table(row: dict) -> str:
    """One size: deeparch against plain Keras, with the ratios against the targets."""
    pipeline, read, fit = row["deeparch"], row["plain_read"], row["plain_fit"]
    prepare_ratio = pipeline["prepare_stage_seconds"] / read["seconds"]
    train_ratio = pipeline["train_seconds"] / fit["seconds"]
    lines = [
        {
            "measure": "prepare stage (shards + MLflow logging) / one plain read pass, s",
            "deeparch": f"{pipeline['prepare_stage_seconds']:.1f}",
            "plain": f"{read['seconds']:.1f}",
            "ratio": f"{prepare_ratio:.2f}",
            "target": f"<= {PREPARE_TARGET}",
            "verdict": verdict(prepare_ratio, PREPARE_TARGET),
        },
        {
            "measure": "of which reading the folder and writing the shards, s",
            "deeparch": f"{pipeline.get('materialise_seconds', 0.0):.1f}",
            "plain": f"{read['seconds']:.1f}",
            "ratio": f"{pipeline.get('materialise_seconds', 0.0) / read['seconds']:.2f}",
            "target": "",
            "verdict": "",
        },
        {
            "measure": "train epoch (fit), s",
            "deeparch": f"{pipeline['train_seconds']:.1f}",
            "plain": f"{fit['seconds']:.1f}",
            "ratio": f"{train_ratio:.2f}",
            "target": f"<= {TRAIN_TARGET}",
            "verdict": verdict(train_ratio, TRAIN_TARGET),
        },
        {
            "measure": "peak memory, GB (deeparch: whole run; plain: fit / read)",
            "deeparch": f"{pipeline['peak_gb']:.2f}",
            "plain": f"{fit['peak_gb']:.2f} / {read['peak_gb']:.2f}",
            "ratio": f"{pipeline['peak_gb'] / fit['peak_gb']:.2f}",
            "target": f"<= {PEAK_TARGET_GB} GB",
            "verdict": verdict(pipeline["peak_gb"], PEAK_TARGET_GB),
        },
    ]
    columns = [(key, key, "{}") for key in ("measure", "deeparch", "plain", "ratio", "target", "verdict")]
    header = (
        f"**{row['images']} images** ({fit['train_images']:.0f} trained on; "
        f"deeparch run {pipeline['run_seconds']:.0f} s end to end"
        + (f"; means of {row['repeats']} runs a side, peaks the highest" if row.get("repeats", 1) > 1 else "")
        + ")"
    )
    return header + "\n\n" + markdown_rows(columns, lines)


def report(record: dict) -> str:
    """What a results file measured, in markdown: a table per image folder size, the peak's growth
    from the smallest to the largest, the CSV's line."""
    parts = [size_table(row) for row in record["images"]]
    growth, rows = record["peak_growth"], record["images"]
    if growth is not None:
        parts.append(
            f"deeparch peak memory {rows[-1]['images']} / {rows[0]['images']} images: {growth:.2f}x "
            f"(target <= {PEAK_GROWTH_TARGET}): {verdict(growth, PEAK_GROWTH_TARGET)}"
        )
    csv = record["csv"]
    if csv:
        run = csv["deeparch"]
        parts.append(
            f"CSV, {csv['rows']:,} rows ({csv['file_gb'] * 1000:.0f} MB), "
            + (f"`{csv['experiment']}`, " if "experiment" in csv else "")
            + f"1 epoch: peak **{run['peak_gb']:.2f} GB** "
            f"(target <= {PEAK_TARGET_GB} GB): {verdict(run['peak_gb'], PEAK_TARGET_GB)}; "
            f"prepare stage {run['prepare_stage_seconds']:.1f} s, train epoch {run['train_seconds']:.1f} s, "
            f"whole run {run['run_seconds']:.0f} s"
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Generate the data, measure each size and the CSV, print the tables and write the JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"]:  # the tables of older results files: --render FILE...
        render(argv[1:], report)
        return 0
    arguments = parse_arguments(argv)
    if arguments.plain:
        plain_keras(arguments.plain, arguments.folder, arguments.result)
        return 0
    holder = None if arguments.workdir else tempfile.TemporaryDirectory(prefix="data-scale-")
    workdir = (arguments.workdir or Path(holder.name)).resolve()
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    reference_before = reference_seconds()
    print(
        f"{machine()}; reference: a 2048x2048 float32 matrix product takes {reference_before:.3f} s; "
        f"load {describe_load()}",
        flush=True,
    )

    rows = []
    for count in [] if arguments.skip_images else arguments.sizes:
        folder = image_folder(workdir, count)
        warm_page_cache(folder)
        load = describe_load()
        runs: dict[str, list[dict]] = {"deeparch": [], "plain_read": [], "plain_fit": []}
        for repeat in range(arguments.repeats):
            # Each repeat runs every side in turn, so that a drift of the machine's speed over
            # the minutes of a size falls on all of them.
            pipeline = measure_pipeline(
                f"images-{count}-{repeat + 1}",
                "cnn-images",
                [f"data.path={folder}", "train.epochs=1"],
                scratch,
            )
            print(f"{count} images, run {repeat + 1}, deeparch: {json.dumps(pipeline)}", flush=True)
            runs["deeparch"].append(pipeline)
            for mode in ("read", "fit"):
                plain = measure_plain(mode, folder, scratch)
                print(f"{count} images, run {repeat + 1}, plain {mode}: {json.dumps(plain)}", flush=True)
                runs[f"plain_{mode}"].append(plain)
        rows.append(
            {
                "images": count,
                **{side: mean_of(measured) for side, measured in runs.items()},
                "runs": runs,
                "repeats": arguments.repeats,
                "load": load,
            }
        )

    csv = None
    if not arguments.skip_csv:
        table = csv_table(workdir, arguments.csv_rows)
        overrides = [f"data.path={table}", "data.target=label", "train.epochs=1"]
        csv = {
            "experiment": "mlp-tabular",
            "rows": arguments.csv_rows,
            "file_gb": table.stat().st_size / GIGABYTE,
            "load": describe_load(),
            "deeparch": measure_pipeline(f"csv-{arguments.csv_rows}", "mlp-tabular", overrides, scratch),
        }
    reference_after = reference_seconds()

    print(
        f"\nreference matrix product {reference_before:.3f} s before, {reference_after:.3f} s after; "
        f"load {describe_load()}"
    )
    growth = rows[-1]["deeparch"]["peak_gb"] / rows[0]["deeparch"]["peak_gb"] if len(rows) > 1 else None
    record = {
        "machine": machine(),
        "reference_matmul_seconds": {"before": reference_before, "after": reference_after},
        "image_pixels": IMAGE_PIXELS,
        "images": rows,
        "peak_growth": growth,
        "csv": csv,
        "targets": {
            "peak_gb": PEAK_TARGET_GB,
            "peak_growth": PEAK_GROWTH_TARGET,
            "prepare_over_read_pass": PREPARE_TARGET,
            "train_over_plain": TRAIN_TARGET,
        },
    }
    markdown = report(record)
    print(f"\n{markdown}")
    write_json(arguments.json, {"markdown": markdown, **record})
    if holder is not None:
        holder.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
