"""How long `make run` takes once the environment is installed: `deeparch run -e default`, timed.

The command runs as a subprocess in a fresh temporary folder, so its MLflow store (`mlruns/`)
and exports start empty and nothing is reused. The embedded datasets come from TFDS' data
directory as usual (generated there on first use); `--fresh-data` points TFDS at an empty
folder instead, so that generating them is timed too, as on a fresh machine. Afterwards the
script reads the store: each member's training seconds (`train_seconds`), its whole pipeline
run and its headline result (test accuracy; a GAN's conditional accuracy and Fréchet ratio).
The target is 5 minutes on the slowest 2-core machine seen; a fixed matrix product's time is
printed beside the figure (before and after the suite) so that a reader can scale it to theirs.

    .venv/bin/python benchmarks/make_run.py
    .venv/bin/python benchmarks/make_run.py --keep /tmp/make-run   # keep the folder and its store
    .venv/bin/python benchmarks/make_run.py --fresh-data
    .venv/bin/python benchmarks/make_run.py --experiment cnn-mnist1d   # any experiment or suite
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, load_average, machine, reference_seconds, write_json

TARGET_SECONDS = 300.0


def member_rows(store: Path) -> list[dict]:
    """One row per pipeline run in the store: experiment, seconds of training and of the run, accuracy."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000, order_by=["attributes.start_time ASC"])
    by_id = {run.info.run_id: run for run in runs}
    rows = []
    for run in runs:
        if run.data.tags.get("stage") != "pipeline":
            continue
        train = by_id.get(run.data.tags.get("train_run_id", ""))
        rows.append(
            {
                "experiment": run.data.tags.get("experiment"),
                "train_seconds": train.data.metrics.get("train_seconds") if train else None,
                "pipeline_seconds": (run.info.end_time - run.info.start_time) / 1000,
                "test_accuracy": run.data.metrics.get("test_accuracy"),
                "conditional_accuracy": run.data.metrics.get("conditional_accuracy"),
                "frechet_ratio": run.data.metrics.get("frechet_ratio"),
            }
        )
    return rows


def _result(row: dict) -> str:
    """A member's headline: its test accuracy, or a GAN's conditional accuracy and Fréchet ratio."""
    if row["conditional_accuracy"] is not None:
        accuracy, ratio = row["conditional_accuracy"], row["frechet_ratio"]
        return f"conditional accuracy {accuracy:.4f}, Fréchet ratio {ratio:.2f}"
    return "n/a" if row["test_accuracy"] is None else f"accuracy {row['test_accuracy']:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the timing and a per-member table, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="default", help="suite or experiment (default: default)")
    parser.add_argument("--fresh-data", action="store_true", help="time the datasets' generation too")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "make_run.json", help="results file")
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it, store included")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch run`")
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)

    executable = Path(sys.executable).parent / "deeparch"
    load_before = load_average()
    reference_before = reference_seconds()
    if arguments.keep:
        arguments.keep.mkdir(parents=True)
    with (
        contextlib.nullcontext(arguments.keep)
        if arguments.keep
        else tempfile.TemporaryDirectory(prefix="make-run-") as scratch
    ):
        scratch = Path(scratch)
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        environment.pop("MLFLOW_TRACKING_URI", None)  # the default store: mlruns/ in the fresh folder
        if arguments.fresh_data:
            environment["TFDS_DATA_DIR"] = str(scratch / "tensorflow_datasets")
        command = [str(executable), "run", "-e", arguments.experiment, *arguments.overrides]
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=scratch, env=environment, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            print(completed.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"`{' '.join(command[1:])}` failed with status {completed.returncode}")
        rows = member_rows(scratch / "mlruns")
    load_after = load_average()
    reference_after = reference_seconds()

    print(f"`deeparch run -e {arguments.experiment}` in a fresh folder and store: {seconds:.0f} s")
    print(f"(load average {load_before:.2f} before, {load_after:.2f} after, {os.cpu_count()} cores)")
    print(
        f"machine-speed reference (2048x2048 float32 matrix product, best of 5): "
        f"{reference_before:.3f} s before, {reference_after:.3f} s after\n"
    )
    lines = ["| experiment | train s | pipeline s | result |", "|---|---|---|---|"]
    for row in rows:
        train = "reused" if row["train_seconds"] is None else f"{row['train_seconds']:.0f}"
        lines.append(f"| {row['experiment']} | {train} | {row['pipeline_seconds']:.0f} | {_result(row)} |")
    lines.append(f"| the whole command, end to end | | {seconds:.0f} | |")
    table = "\n".join(lines)
    print(table)
    verdict = "met" if seconds <= TARGET_SECONDS else "MISSED"
    print(f"\ntotal {seconds:.0f} s (target <= {TARGET_SECONDS:.0f} s): {verdict}")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "measured_command": " ".join(["deeparch", *command[1:]]),
            "fresh_data": arguments.fresh_data,
            "machine": machine(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "reference_seconds_before": reference_before,
            "reference_seconds_after": reference_after,
            "seconds": seconds,
            "members": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
