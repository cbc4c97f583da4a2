"""Reproduce the MNIST-1D table: every architecture's shipped experiment, several seeds.

Each experiment (`mlp-mnist1d`, `cnn-mnist1d`, `rnn-mnist1d`, `lstm-mnist1d` by default; the GAN
is scored differently, see gan_digits.py) runs through the whole pipeline once per seed
(`pipelines.runner.run_pipeline`, every stage forced) in a fresh temporary MLflow store, so no
earlier run is reused. It prints one markdown row per experiment beside the published table
(greydanus/mnist1d README) and issue 8's target, and writes the same numbers as JSON.

    .venv/bin/python benchmarks/mnist1d_table.py                           # 4 experiments x 3 seeds
    .venv/bin/python benchmarks/mnist1d_table.py --experiments cnn-mnist1d --seeds 0
    .venv/bin/python benchmarks/mnist1d_table.py train.epochs=50 --experiments mlp-mnist1d   # a probe
    .venv/bin/python benchmarks/mnist1d_table.py --experiments rnn-digits lstm-digits \
        --json benchmarks/results/recurrent_digits.json     # issue 4's digits targets

Training seconds are the train run's `train_seconds` metric (the `fit` call: compilation, every
epoch and its validation, the MLflow logging and the checkpoints); samples/s is the train run's
`samples_per_second_mean` (training examples per second of epoch wall time, averaged over epochs).
The machine's load average is recorded with the results: on a shared machine the times are
pessimistic.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import RESULTS_DIR, announce_machine, describe_load, machine, render, write_json

DEFAULT_EXPERIMENTS = ("mlp-mnist1d", "cnn-mnist1d", "rnn-mnist1d", "lstm-mnist1d")
# greydanus/mnist1d README, test accuracy (the GRU is the published recurrent model).
PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "lstm": 0.91, "rnn": None}
PUBLISHED_NAME = {"lstm": "GRU"}
# Issues 8 and 4's targets by (architecture, dataset): mean of 3 seeds, each run <= 120 s of
# training on 2 CPU cores. Experiments on other datasets (e.g. rnn-digits) can be run too; the
# published column is MNIST-1D's only.
TARGET_ACCURACY = {
    ("mlp", "mnist1d"): 0.94,
    ("cnn", "mnist1d"): 0.99,
    ("lstm", "mnist1d"): 0.97,
    ("rnn", "mnist1d"): 0.94,
    ("rnn", "digits"): 0.98,
    ("lstm", "digits"): 0.98,
}
TARGET_TRAIN_SECONDS = 120.0


@dataclass
class SeedResult:
    """One pipeline run of one experiment and seed."""

    seed: int
    test_accuracy: float
    train_seconds: float
    samples_per_second: float
    pipeline_seconds: float
    pipeline_run_id: str
    # With `run_experiment(..., measure_fit=True)`: the trained model's accuracy on its own train
    # split in inference mode (no augmentation, no dropout), and the epochs it trained.
    train_accuracy: float | None = None
    epochs: int | None = None


@dataclass
class ExperimentResult:
    """Every seed of one experiment, plus what it is compared with."""

    experiment: str
    architecture: str
    published: float | None
    target: float | None
    runs: list[SeedResult] = field(default_factory=list)

    @property
    def accuracies(self) -> list[float]:
        return [run.test_accuracy for run in self.runs]

    def summary(self) -> dict:
        """Mean and standard deviation of accuracy, mean and worst training time, mean samples/s."""
        accuracies = self.accuracies
        seconds = [run.train_seconds for run in self.runs]
        mean = statistics.fmean(accuracies)
        return {
            "mean_accuracy": mean,
            "std_accuracy": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "mean_train_seconds": statistics.fmean(seconds),
            "max_train_seconds": max(seconds),
            "mean_samples_per_second": statistics.fmean(run.samples_per_second for run in self.runs),
            "accuracy_target_met": None if self.target is None else mean >= self.target,
            "time_target_met": max(seconds) <= TARGET_TRAIN_SECONDS,
        }


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Experiments, seeds, JSON path and dotted overrides passed on to every experiment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experiments",
        nargs="+",
        default=None,
        help=f"default: {' '.join(DEFAULT_EXPERIMENTS)} (those shipped)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one pipeline run per seed")
    parser.add_argument(
        "--json", type=Path, default=RESULTS_DIR / "mnist1d_table.json", help="where to write the results"
    )
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch run`")
    return parser.parse_args(argv)


def run_experiment(
    name: str, seeds: list[int], overrides: list[str], scratch: Path, measure_fit: bool = False
) -> ExperimentResult:
    """The whole pipeline of one experiment once per seed, nothing reused; with `measure_fit`, also
    each model's augmentation-free accuracy on its train split and the epochs it trained."""
    import keras

    from pipelines import runner, tracking
    from pipelines.config import load_experiment

    first = load_experiment(name, overrides)
    result = ExperimentResult(
        experiment=name,
        architecture=first.architecture,
        published=PUBLISHED.get(first.architecture) if first.data.name == "mnist1d" else None,
        target=TARGET_ACCURACY.get((first.architecture, first.data.name)),
    )
    for seed in seeds:
        config = load_experiment(name, [*overrides, f"seed={seed}", f"export.dir={scratch / 'exports'}"])
        keras.backend.clear_session()
        started = time.perf_counter()
        pipeline = runner.run_pipeline(config, force={"all"})
        pipeline_seconds = time.perf_counter() - started
        train_metrics = tracking.get_run(pipeline.trained.run_id).data.metrics
        result.runs.append(
            SeedResult(
                seed=seed,
                test_accuracy=pipeline.evaluated.metrics["test_accuracy"],
                train_seconds=train_metrics["train_seconds"],
                samples_per_second=train_metrics["samples_per_second_mean"],
                pipeline_seconds=pipeline_seconds,
                pipeline_run_id=pipeline.run_id,
                **(_fit(pipeline) if measure_fit else {}),
            )
        )
        last = result.runs[-1]
        print(
            f"{name} seed {seed}: test accuracy {last.test_accuracy:.4f}, train {last.train_seconds:.1f} s, "
            f"{last.samples_per_second:.0f} samples/s (load {describe_load()})",
            flush=True,
        )
    return result


def _fit(pipeline) -> dict:
    """How well a trained model fits its train split: accuracy in inference mode, epochs trained."""
    import numpy as np
    import tensorflow as tf

    from pipelines.data.input_pipeline import as_tf_dataset

    model, right, count = pipeline.trained.model, 0, 0
    infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for x, y in as_tf_dataset(pipeline.prepared.dataset.splits["train"], 256, cache="none"):
        right += int(np.sum(np.asarray(infer(x)).argmax(axis=-1) == y.numpy().astype(np.int64)))
        count += int(y.shape[0])
    history = pipeline.trained.history
    return {"train_accuracy": right / max(1, count), "epochs": len(next(iter(history.values()), []))}


def markdown_table(results: list[ExperimentResult]) -> str:
    """One row per experiment, then the published logistic-regression baseline."""
    lines = [
        "| experiment | published (greydanus/mnist1d) | target | test accuracy, mean ± std | per seed "
        "| train s, mean (max) | samples/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        summary = result.summary()
        published = (
            f"{PUBLISHED_NAME.get(result.architecture, result.architecture.upper())} {result.published:.0%}"
            if result.published is not None
            else "n/a"
        )
        target = f"≥ {result.target:.0%}" if result.target is not None else "n/a"
        per_seed = " / ".join(f"{accuracy:.1%}" for accuracy in result.accuracies)
        lines.append(
            f"| {result.experiment} | {published} | {target} | "
            f"{summary['mean_accuracy']:.2%} ± {summary['std_accuracy']:.2%} | {per_seed} | "
            f"{summary['mean_train_seconds']:.0f} ({summary['max_train_seconds']:.0f}) | "
            f"{summary['mean_samples_per_second']:,.0f} |"
        )
    if any(result.published is not None for result in results):
        lines.append(f"| (logistic regression) | {PUBLISHED['logistic']:.0%} | | | | | |")
    return "\n".join(lines)


def target_lines(results: list[ExperimentResult]) -> list[str]:
    """Issue 8's targets beside the measured numbers."""
    lines = []
    for result in results:
        summary = result.summary()
        accuracy = (
            "no target"
            if result.target is None
            else f"{summary['mean_accuracy']:.2%} vs ≥ {result.target:.0%}: "
            f"{'met' if summary['accuracy_target_met'] else 'MISSED'}"
        )
        seconds = (
            f"worst train {summary['max_train_seconds']:.0f} s vs ≤ {TARGET_TRAIN_SECONDS:.0f} s: "
            f"{'met' if summary['time_target_met'] else 'MISSED'}"
        )
        lines.append(f"- {result.experiment}: {accuracy}; {seconds}")
    return lines


def table_of(record: dict) -> str:
    """The table of a results file, from its `experiments`."""
    return markdown_table(
        [
            ExperimentResult(
                experiment=entry["experiment"],
                architecture=entry["architecture"],
                published=entry["published"],
                target=entry["target"],
                runs=[SeedResult(**run) for run in entry["runs"]],
            )
            for entry in record["experiments"]
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run every experiment and seed, print the table and write the JSON results."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"]:  # the table of older results files: --render FILE...
        render(argv[1:], table_of)
        return 0
    arguments = parse_arguments(argv)
    from pipelines.config import shipped_experiments

    shipped = set(shipped_experiments())
    experiments = arguments.experiments or [name for name in DEFAULT_EXPERIMENTS if name in shipped]
    misplaced = [name for name in experiments if "=" in name]
    if misplaced:
        # argparse hands everything after --experiments to it; say so before anything runs.
        raise SystemExit(
            f"--experiments: {' '.join(misplaced)} are overrides, not experiments; give overrides "
            "before --experiments (or after --)"
        )
    reference, load_before = announce_machine(), describe_load()
    with tempfile.TemporaryDirectory(prefix="mnist1d-table-") as scratch:
        scratch = Path(scratch)
        # A fresh store per invocation, set before the pipeline configures MLflow.
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
        started = time.perf_counter()
        results = [
            run_experiment(name, arguments.seeds, arguments.overrides, scratch) for name in experiments
        ]
        total_seconds = time.perf_counter() - started
    load_after = describe_load()

    print(f"\nTest accuracy, seeds {' '.join(map(str, arguments.seeds))}")
    if arguments.overrides:
        print("overrides: " + " ".join(arguments.overrides))
    table = markdown_table(results)
    print(table)
    print("\n".join(target_lines(results)))
    print(f"total {total_seconds:.0f} s; load average {load_before} before, {load_after} after")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "seeds": arguments.seeds,
            "overrides": arguments.overrides,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "total_seconds": total_seconds,
            "published": PUBLISHED,
            "experiments": [{**asdict(result), **result.summary()} for result in results],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
