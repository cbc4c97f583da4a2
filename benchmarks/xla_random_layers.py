"""Is a model with dropout faster with XLA or without, on a CPU? (Data no shipped setting was tuned on.)

For each case, a model from `models.build` with dropout is compiled with and without
`jit_compile` and fitted on a scikit-learn dataset (batch 32): one epoch to warm up, then the mean
of 3 epochs. The train stage turns XLA off on a CPU for such models (`random_layers`); this shows
what that costs or saves away from MNIST-1D. Prints a machine-speed reference beside the figures.

    .venv/bin/python benchmarks/xla_random_layers.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import RESULTS_DIR, describe_load, reference_seconds, write_json

EPOCHS = 3


def cases():
    """(name, architecture, spec, hyper-parameters, x, y) on digits images, digit rows and breast cancer."""
    from sklearn.datasets import load_breast_cancer, load_digits

    from models.spec import DataSpec

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")
    cancer = load_breast_cancer()
    features = ((cancer.data - cancer.data.mean(0)) / cancer.data.std(0)).astype("float32")
    return [
        (
            "cnn, digits 8x8, dropout 0.1",
            "cnn",
            DataSpec((8, 8, 1), num_classes=10),
            {"dropout": 0.1},
            images[..., None],
            digits.target,
        ),
        (
            "lstm, digits as 8 rows, dropout 0.2",
            "lstm",
            DataSpec((8, 8), num_classes=10),
            {"dropout": 0.2},
            images,
            digits.target,
        ),
        (
            "mlp 256x256, breast cancer, dropout 0.3",
            "mlp",
            DataSpec((30,), num_classes=2),
            {"dropout": 0.3, "units": [256, 256]},
            features,
            cancer.target,
        ),
    ]


def epoch_seconds(architecture, spec, hparams, x, y, jit_compile: bool, epochs: int = EPOCHS) -> float:
    """Mean seconds of an epoch after a warm-up epoch."""
    import keras

    import models

    keras.utils.set_random_seed(0)
    model = models.build(architecture, spec, **hparams)
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=jit_compile)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return (time.perf_counter() - started) / epochs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="timed epochs per case, after one warm-up")
    parser.add_argument(
        "--json", type=Path, default=RESULTS_DIR / "xla_random_layers.json", help="results file"
    )
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    reference = reference_seconds()
    print(f"machine speed reference: {reference:.3f} s per 2048x2048 float32 matmul (load {describe_load()})")
    lines, rows = ["| case | epoch with XLA, s | without, s | XLA / without |", "|---|---|---|---|"], []
    for name, architecture, spec, hparams, x, y in cases():
        with_xla = epoch_seconds(architecture, spec, hparams, x, y, True, arguments.epochs)
        without = epoch_seconds(architecture, spec, hparams, x, y, False, arguments.epochs)
        rows.append({"case": name, "with_xla_seconds": with_xla, "without_seconds": without})
        lines.append(f"| {name} | {with_xla:.3f} | {without:.3f} | {with_xla / without:.2f} |")
        print(lines[-1], flush=True)
    write_json(
        arguments.json,
        {
            "markdown": "\n".join(lines),
            "reference_matmul_seconds": reference,
            "load_after": describe_load(),
            "epochs": arguments.epochs,
            "cases": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
