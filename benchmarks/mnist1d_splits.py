"""MNIST-1D with a validation split of one's choosing, as an `.npz` file the pipeline reads.

Which 400 of MNIST-1D's 4,000 training examples are held out for validation is one draw, the
same for every seed of an experiment: `rnn-mnist1d`'s mean over seeds moves with it. This writes
the dataset with a chosen draw, so that the same experiment can be trained on several
(`data.source=npz data.path=FILE`, e.g. through mnist1d_table.py):

    .venv/bin/python benchmarks/mnist1d_splits.py --rule hash --seed 1 --out /tmp/mnist1d-hash1.npz
    .venv/bin/python benchmarks/mnist1d_table.py --experiments rnn-mnist1d --seeds 20 21 \\
        data.source=npz data.path=/tmp/mnist1d-hash1.npz

Rules: `hash` is the pipeline's own (`pipelines.data.source.assign_splits`; it uses seed 1234);
`permutation` is the rule before the streaming data layer (commit 71b0adf and earlier: the first
10 % of `numpy.random.default_rng(seed).permutation(4000)` held out, the training split in that
permuted order; it also used 1234). The test split is MNIST-1D's own 1,000 examples either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

VALIDATION_FRACTION = 0.1


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The rule, its seed, the output file and the TFDS folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", choices=["hash", "permutation"], required=True, help="how to hold out")
    parser.add_argument("--seed", type=int, required=True, help="the rule's seed (the pipeline uses 1234)")
    parser.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    parser.add_argument("--data-dir", type=Path, default=None, help="TFDS folder (default: a temporary one)")
    return parser.parse_args(argv)


def mnist1d(split: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """One of MNIST-1D's splits in TFDS order, from the embedded builder."""
    import tensorflow_datasets as tfds

    import pipelines.datasets.mnist1d  # noqa: F401  (registers the embedded builder with TFDS)

    rows = list(tfds.as_numpy(tfds.load("mnist1d", split=split, data_dir=str(data_dir))))
    x = np.stack([row["x"] for row in rows]).astype(np.float32)
    return x, np.array([row["label"] for row in rows], dtype=np.int32)


def held_out(rule: str, seed: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and the validation examples, in the order each split holds them."""
    if rule == "permutation":
        order = np.random.default_rng(seed).permutation(total)
        count = max(1, int(round(VALIDATION_FRACTION * total)))
        return order[count:], order[:count]
    from pipelines.data.source import TRAIN, VALIDATION, assign_splits

    codes = assign_splits(total, VALIDATION_FRACTION, seed=seed)
    return np.flatnonzero(codes == TRAIN), np.flatnonzero(codes == VALIDATION)


def main(argv: list[str]) -> None:
    arguments = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="mnist1d-tfds-") as scratch:
        data_dir = arguments.data_dir or Path(scratch)
        x, y = mnist1d("train", data_dir)
        x_test, y_test = mnist1d("test", data_dir)
    train, validation = held_out(arguments.rule, arguments.seed, len(y))
    np.savez(
        arguments.out,
        x_train=x[train],
        y_train=y[train],
        x_val=x[validation],
        y_val=y[validation],
        x_test=x_test,
        y_test=y_test,
    )
    counts = " ".join(str(n) for n in np.bincount(y[validation], minlength=10))
    print(f"wrote {arguments.out}: {len(train)} train, {len(validation)} validation (per class {counts})")


if __name__ == "__main__":
    main(sys.argv[1:])
