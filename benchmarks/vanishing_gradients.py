"""Measure the vanishing-gradients comparison: a simple RNN against an LSTM on the adding problem.

Runs every member of the shipped `vanishing-gradients` suite (rnn-adding, lstm-adding: same data,
width and budget, gradient probe on) through the whole pipeline, in a temporary MLflow store
unless MLFLOW_TRACKING_URI names one, and prints a markdown table: test MSE beside the baseline
MSE (always predicting the train-target mean, ≈ 0.167), the training and pipeline seconds, and
‖∂loss/∂h_0‖ / ‖∂loss/∂h_{T-1}‖ at the last probe (near 0 when the gradient vanishes on its way
back to the first step). Issue 4's target on T=100: LSTM test MSE < 0.01 within a few CPU
minutes, the simple RNN near 0.167. The same numbers are written as JSON.

    .venv/bin/python benchmarks/vanishing_gradients.py                    # T=100
    .venv/bin/python benchmarks/vanishing_gradients.py --sequence-length 50 train.epochs=5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import RESULTS_DIR, announce_machine, describe_load, machine, markdown_rows, write_json

SUITE = "vanishing-gradients"
TARGET_LSTM_MSE = 0.01
COLUMNS = (
    ("architecture", "architecture", "{}"),
    ("test_mse", "test MSE", "{:.4f}"),
    ("baseline_mse", "baseline MSE", "{:.4f}"),
    ("train_seconds", "train s", "{:.0f}"),
    ("pipeline_seconds", "pipeline s", "{:.0f}"),
    ("gradient_ratio", "‖∂L/∂h_0‖ / ‖∂L/∂h_T-1‖ (last probe)", "{:.2e}"),
    ("probe_epoch", "probe epoch", "{}"),
)


@dataclass
class ArchitectureResult:
    """One suite member's scores, timings and gradient flow."""

    architecture: str
    experiment: str
    test_mse: float
    baseline_mse: float
    train_seconds: float
    pipeline_seconds: float
    gradient_ratio: float | None
    probe_epoch: int | None
    pipeline_run_id: str


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Sequence length, JSON path and dotted overrides passed on to both experiments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence-length", type=int, default=100, help="adding-problem length T")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="results file; default benchmarks/results/vanishing_gradients.json",
    )
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, as for `deeparch run`")
    return parser.parse_args(argv)


def run_suite(sequence_length: int, overrides: list[str], scratch: Path) -> list[ArchitectureResult]:
    """Run each member of the suite through prepare -> export and read back what it logged."""
    import mlflow

    from pipelines import runner, tracking
    from pipelines.config import load_experiments

    configs = load_experiments(
        SUITE, [f"data.sequence_length={sequence_length}", f"export.dir={scratch / 'exports'}", *overrides]
    )
    results = []
    for config in configs:
        started = time.perf_counter()
        result = runner.run_pipeline(config)
        pipeline_seconds = time.perf_counter() - started
        train_run = tracking.get_run(result.trained.run_id)
        ratios = mlflow.MlflowClient().get_metric_history(
            result.trained.run_id, "gradient_norm_ratio_first_to_last"
        )
        last = max(ratios, key=lambda metric: metric.step) if ratios else None
        metrics = result.evaluated.metrics
        results.append(
            ArchitectureResult(
                architecture=config.architecture,
                experiment=config.name,
                test_mse=metrics["test_mse"],
                baseline_mse=metrics["test_baseline_mse"],
                train_seconds=train_run.data.metrics["train_seconds"],
                pipeline_seconds=pipeline_seconds,
                gradient_ratio=last.value if last else None,
                probe_epoch=last.step if last else None,
                pipeline_run_id=result.run_id,
            )
        )
        print(markdown_table(results[-1:]), flush=True)
    return results


def markdown_table(results: list[ArchitectureResult]) -> str:
    """One row per architecture."""
    return markdown_rows(COLUMNS, [asdict(result) for result in results])


def target_lines(results: list[ArchitectureResult]) -> list[str]:
    """Issue 4's target beside the measured LSTM and RNN scores."""
    lines = []
    for result in results:
        if result.architecture == "lstm":
            met = result.test_mse < TARGET_LSTM_MSE
            lines.append(
                f"- LSTM test MSE {result.test_mse:.4f} (target < {TARGET_LSTM_MSE:g} in "
                f"{result.train_seconds:.0f} s of training): {'met' if met else 'MISSED'}"
            )
        else:
            lines.append(
                f"- simple RNN test MSE {result.test_mse:.4f} against the baseline {result.baseline_mse:.4f} "
                f"({result.test_mse / result.baseline_mse:.0%} of it)"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the table and write the JSON results."""
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    json_path = arguments.json or RESULTS_DIR / "vanishing_gradients.json"
    reference = announce_machine()
    with tempfile.TemporaryDirectory(prefix="vanishing-gradients-") as scratch:
        scratch = Path(scratch)
        # Set before the pipeline imports MLflow; a user's own store wins.
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{scratch / 'mlflow.db'}")
        started = time.perf_counter()
        results = run_suite(arguments.sequence_length, arguments.overrides, scratch)
        total_seconds = time.perf_counter() - started

    print(f"\n{SUITE}, T={arguments.sequence_length}")
    if arguments.overrides:
        print("overrides: " + " ".join(arguments.overrides))
    table = markdown_table(results)
    print(table)
    print("\n".join(target_lines(results)))
    print(f"total {total_seconds:.0f} s")
    write_json(
        json_path,
        {
            "markdown": table,
            "suite": SUITE,
            "sequence_length": arguments.sequence_length,
            "overrides": arguments.overrides,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "load_after": describe_load(),
            "total_seconds": total_seconds,
            "results": [asdict(result) for result in results],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
