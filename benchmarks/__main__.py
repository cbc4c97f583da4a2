"""Regenerate the published figures: every benchmark script, each writing its results JSON (commit,
date, machine reference, the exact command and the markdown table the docs show).

    .venv/bin/python -m benchmarks                    # every script, full size: a few hours on 2 cores
    .venv/bin/python -m benchmarks tables startup     # some of them
    .venv/bin/python -m benchmarks --quick            # every script at small sizes, one seed (CI)

`--quick` writes its JSON files to a temporary folder (or `--out`), never over
`benchmarks/results/`: it keeps every script working, its figures are not results. The full run
writes where the docs read (`<!-- results: NAME.json -->` lines in docs/pages). The tuning tables
and `tune_replay` replay grids that take hours; they run only when named.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Benchmark:
    """A script, its arguments for the published figures and for a quick check, and its results file."""

    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]  # overrides first: an option of nargs="+" (--seeds) would swallow them
    results: str
    in_full_run: bool = True  # False: hours of compute, run only when named


BENCHMARKS = {
    "startup": Benchmark("startup.py", (), ("--runs", "2"), "startup.json"),
    "make_run": Benchmark(
        "make_run.py", ("--fresh-data",), ("--experiment", "mlp-digits", "train.epochs=1"), "make_run.json"
    ),
    "mnist1d_table": Benchmark(
        "mnist1d_table.py",
        (),
        ("train.epochs=1", "--experiments", "mlp-mnist1d", "--seeds", "0"),
        "mnist1d_table.json",
    ),
    "recurrent_digits": Benchmark(
        "mnist1d_table.py",
        ("--experiments", "rnn-digits", "lstm-digits"),
        ("train.epochs=1", "--experiments", "rnn-digits", "--seeds", "0"),
        "recurrent_digits.json",
    ),
    "gan_digits": Benchmark("gan_digits.py", (), ("train.epochs=1", "--seeds", "0"), "gan_digits.json"),
    "gan_mnist1d": Benchmark(
        "gan_digits.py",
        ("--experiment", "gan-mnist1d"),
        ("train.epochs=1", "--experiment", "gan-mnist1d", "--seeds", "0"),
        "gan_mnist1d.json",
    ),
    "vanishing_gradients": Benchmark(
        "vanishing_gradients.py",
        (),
        ("--sequence-length", "20", "train.epochs=1"),
        "vanishing_gradients.json",
    ),
    "overhead": Benchmark(
        "overhead.py", ("--repeats", "5"), ("--repeats", "1", "train.epochs=2"), "overhead_cnn_mnist1d.json"
    ),
    "gan_images": Benchmark(
        "gan_images.py",
        (),
        ("--images", "200", "--sizes", "32", "--epochs", "2", "--repeats", "1"),
        "gan_images.json",
    ),
    "gan_images_quality": Benchmark("gan_images_quality.py", (), ("--quick",), "gan_images_quality.json"),
    "text_table": Benchmark(
        "text_table.py",
        ("--datasets", "reviews", "docstrings"),
        ("--datasets", "reviews", "--experiments", "cnn-text", "--seeds", "0"),
        "text_table.json",
    ),
    "speech_table": Benchmark(
        "speech_table.py",
        (),
        ("train.epochs=2", "--experiments", "cnn-speech", "--seeds", "0"),
        "speech_table.json",
    ),
    "speech_words": Benchmark("speech_words.py", (), ("train.epochs=1", "--seeds", "0"), "speech_words.json"),
    "xla_random_layers": Benchmark("xla_random_layers.py", (), ("--epochs", "1"), "xla_random_layers.json"),
    "tables": Benchmark("tables.py", (), ("--tables", "wages", "--seeds", "0"), "tables.json"),
    "tables_held_out": Benchmark(
        "tables.py",
        ("--tables", "titanic", "mroz", "swiss-labor", "biopsy", "hmda", "fertility"),
        ("--tables", "mroz", "--seeds", "0"),
        "tables_held_out.json",
    ),
    "tables_probe": Benchmark(
        "tables_probe.py", (), ("--overrides", "train.epochs=2", "--draw", "1"), "tables_probe.json"
    ),
    "tables_members": Benchmark(
        "tables_members.py",
        (),
        ("--overrides", "train.epochs=2", "--tables", "mroz", "--groups", "1"),
        "tables_members.json",
    ),
    "data_scale": Benchmark(
        "data_scale.py", (), ("--sizes", "200", "--csv-rows", "20000"), "data_scale.json"
    ),
    "tune": Benchmark(
        "tune.py",
        ("--space", "cnn"),
        ("--space", "narrow", "--seeds", "0", "--epochs", "2", "--max-trials", "3"),
        "tune_cnn.json",
        False,
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"of {', '.join(BENCHMARKS)}; default: all but the hours-long ones"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one seed, results to --out")
    parser.add_argument(
        "--out", type=Path, help="where --quick writes its JSON (default: a temporary folder)"
    )
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; allowed: {', '.join(BENCHMARKS)}")
    names = arguments.names or [
        name for name, bench in BENCHMARKS.items() if bench.in_full_run or arguments.quick
    ]
    out = arguments.out or (Path(tempfile.mkdtemp(prefix="deeparch-bench-")) if arguments.quick else None)
    failed = []
    for name in names:
        bench = BENCHMARKS[name]
        command = [
            sys.executable,
            str(HERE / bench.script),
            *(bench.quick if arguments.quick else bench.full),
        ]
        json_path = (out / bench.results) if out else (HERE / "results" / bench.results)
        shown = json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path
        command[2:2] = ["--json", str(shown)]  # every script takes where to write (run from ROOT)
        print(f"[{name}] {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        status = subprocess.run(command, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).returncode
        seconds = time.perf_counter() - started
        print(f"[{name}] {'ok' if status == 0 else f'FAILED (exit {status})'} in {seconds:.0f} s", flush=True)
        if status != 0:
            failed.append(name)
    if out:
        print(f"quick results in {out}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
