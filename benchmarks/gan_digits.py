"""Benchmark a shipped GAN experiment over several seeds against issue 5's targets.

Runs the experiment (`gan-digits` by default) through the whole pipeline once per seed, in a
temporary MLflow store unless MLFLOW_TRACKING_URI names one, and prints one markdown row per seed
plus the mean: the evaluator's accuracy on generated samples against the labels they were
conditioned on, the Fréchet distance beside the real-vs-real floor, the classifier score beside
the real-data value, and the training time. The evaluator classifier is trained once, first, and
reused by every seed. The same numbers are written as JSON.

Training seconds are the train run's `train_seconds` metric (the `fit` call, with its validation
and sample grids); pipeline seconds time all four stages. The machine's load average is recorded
with the results: on a shared machine the times are pessimistic.

    .venv/bin/python benchmarks/gan_digits.py                       # gan-digits, seeds 0 1 2
    .venv/bin/python benchmarks/gan_digits.py --experiment gan-mnist1d --seeds 0
    .venv/bin/python benchmarks/gan_digits.py train.epochs=20 --seeds 0   # a short probe

Overrides go before `--seeds` (or after `--`), which otherwise reads them as seeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import RESULTS_DIR, announce_machine, describe_load, machine, markdown_rows, write_json

# Issue 5's targets on digits, conditional GAN, mean of 3 seeds.
TARGET_CONDITIONAL_ACCURACY = 0.90
TARGET_FRECHET_RATIO = 3.0
TARGET_CLASSIFIER_SCORE = 8.0
COLUMNS = (
    ("seed", "seed", "{}"),
    ("conditional_accuracy", "evaluator accuracy on generated", "{:.1%}"),
    ("frechet_distance", "Fréchet distance", "{:.2f}"),
    ("real_frechet_distance", "real-vs-real floor", "{:.2f}"),
    ("frechet_ratio", "ratio", "{:.2f}"),
    ("classifier_score", "classifier score", "{:.2f}"),
    ("real_classifier_score", "real classifier score", "{:.2f}"),
    ("train_seconds", "train s", "{:.0f}"),
    ("pipeline_seconds", "pipeline s", "{:.0f}"),
)


@dataclass
class SeedResult:
    """One seed's scores and timings."""

    seed: int
    conditional_accuracy: float | None
    frechet_distance: float
    real_frechet_distance: float
    frechet_ratio: float
    classifier_score: float
    real_classifier_score: float
    train_seconds: float
    pipeline_seconds: float
    pipeline_run_id: str


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Seeds, experiment, JSON path and dotted overrides passed on to the experiment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="gan-digits", help="shipped GAN experiment or YAML path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one pipeline run per seed")
    parser.add_argument(
        "--json", type=Path, default=None, help="results file; default benchmarks/results/<experiment>.json"
    )
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch run`")
    return parser.parse_args(argv)


def run_seeds(experiment: str, seeds: list[int], overrides: list[str], scratch: Path) -> list[SeedResult]:
    """Train the evaluator once, then run the whole pipeline for each seed."""
    from pipelines import runner, tracking
    from pipelines.config import load_experiment

    base = load_experiment(experiment, [*overrides, f"export.dir={scratch / 'exports'}"])
    # The same evaluator config the runner derives, so that every seed reuses this run.
    evaluator_name = base.evaluate.evaluator or f"cnn-{base.data.name}"
    evaluator = load_experiment(evaluator_name).model_copy(
        update={"data": base.data, "tracking": base.tracking}
    )
    started = time.perf_counter()
    evaluator_run = runner.train(evaluator)
    print(
        f"evaluator {evaluator_name} trained in {time.perf_counter() - started:.0f} s "
        f"(load {describe_load()})",
        flush=True,
    )

    results = []
    for seed in seeds:
        config = load_experiment(
            experiment, [*overrides, f"export.dir={scratch / 'exports'}", f"seed={seed}"]
        )
        started = time.perf_counter()
        result = runner.run_pipeline(config)
        pipeline_seconds = time.perf_counter() - started
        evaluate_run = tracking.get_run(result.evaluated.run_id)
        if evaluate_run.data.tags.get("evaluator_run_id") != evaluator_run.run_id:
            print(f"warning: seed {seed} trained its own evaluator", file=sys.stderr)
        metrics = result.evaluated.metrics
        results.append(
            SeedResult(
                seed=seed,
                conditional_accuracy=metrics.get("conditional_accuracy"),
                frechet_distance=metrics["frechet_distance"],
                real_frechet_distance=metrics["real_frechet_distance"],
                frechet_ratio=metrics["frechet_ratio"],
                classifier_score=metrics["classifier_score"],
                real_classifier_score=metrics["real_classifier_score"],
                train_seconds=tracking.get_run(result.trained.run_id).data.metrics["train_seconds"],
                pipeline_seconds=pipeline_seconds,
                pipeline_run_id=result.run_id,
            )
        )
        print(f"{markdown_table(results[-1:])}\nload {describe_load()}", flush=True)
    return results


def mean_row(results: list[SeedResult]) -> dict:
    """The mean of every numeric column over seeds."""
    row: dict = {"seed": "mean"}
    for key, _, _ in COLUMNS[1:]:
        values = [getattr(result, key) for result in results if getattr(result, key) is not None]
        row[key] = statistics.fmean(values) if values else None
    return row


def markdown_table(results: list[SeedResult], mean: dict | None = None) -> str:
    """One row per seed, then the mean row when given."""
    return markdown_rows(COLUMNS, [asdict(result) for result in results] + ([mean] if mean else []))


def target_lines(mean: dict) -> list[str]:
    """Issue 5's targets beside the measured means."""
    checks = [
        ("conditional accuracy", mean["conditional_accuracy"], f">= {TARGET_CONDITIONAL_ACCURACY:.0%}"),
        ("Fréchet ratio", mean["frechet_ratio"], f"<= {TARGET_FRECHET_RATIO:g}"),
        ("classifier score", mean["classifier_score"], f">= {TARGET_CLASSIFIER_SCORE:g}"),
    ]
    met = [
        mean["conditional_accuracy"] is not None
        and mean["conditional_accuracy"] >= TARGET_CONDITIONAL_ACCURACY,
        mean["frechet_ratio"] <= TARGET_FRECHET_RATIO,
        mean["classifier_score"] >= TARGET_CLASSIFIER_SCORE,
    ]
    return [
        f"- {name}: {'n/a' if value is None else f'{value:.3f}'} (target {target}): "
        f"{'met' if ok else 'MISSED'}"
        for (name, value, target), ok in zip(checks, met, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON results."""
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    json_path = arguments.json or RESULTS_DIR / f"{arguments.experiment.replace('-', '_')}.json"
    reference = announce_machine()
    with tempfile.TemporaryDirectory(prefix="gan-benchmark-") as scratch:
        scratch = Path(scratch)
        # Set before the pipeline imports MLflow; a user's own store wins.
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{scratch / 'mlflow.db'}")
        load_before, started = describe_load(), time.perf_counter()
        results = run_seeds(arguments.experiment, arguments.seeds, arguments.overrides, scratch)
        total_seconds, load_after = time.perf_counter() - started, describe_load()

    mean = mean_row(results)
    print(f"\n{arguments.experiment}, seeds {' '.join(map(str, arguments.seeds))}")
    if arguments.overrides:
        print("overrides: " + " ".join(arguments.overrides))
    table = markdown_table(results, mean)
    print(table)
    print("issue 5's targets (set for gan-digits):")
    print("\n".join(target_lines(mean)))
    print(f"total {total_seconds:.0f} s, load {load_before} before and {load_after} after")
    write_json(
        json_path,
        {
            "markdown": table,
            "experiment": arguments.experiment,
            "seeds": arguments.seeds,
            "overrides": arguments.overrides,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "total_seconds": total_seconds,
            "per_seed": [asdict(result) for result in results],
            "mean": mean,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
