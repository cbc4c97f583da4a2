"""What the benchmark scripts share: where results go, the machine and its load, JSON and tables.

The scripts run as `.venv/bin/python benchmarks/<name>.py`, so this folder is `sys.path[0]` and
they import it as `common`. Nothing here imports TensorFlow or the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# A table column: the row's key, the column title and the format of its cells ("{}" for str()).
Column = tuple[str, str, str]


def machine() -> str:
    """The architecture, core count and operating system, for the record."""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}"


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def describe_load() -> str:
    """The 1-minute load average and the core count, for the record: "1.04 on 2 cores"."""
    return f"{load_average():.2f} on {os.cpu_count()} cores"


def reference_seconds(size: int = 2048, repeats: int = 5) -> float:
    """Best wall time of one fixed float32 NumPy matrix product (`size` x `size`): how fast this
    machine computes right now, to read other figures against (it grows with the load)."""
    import numpy as np

    rng = np.random.default_rng(0)
    left, right = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.matmul(left, right)
        best = min(best, time.perf_counter() - started)
    return best


def provenance() -> dict[str, str]:
    """Where a figure comes from: the commit (with `+changes` when the tree differs from it), the
    date and the exact command that measured it."""
    import shlex
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    script = Path(sys.argv[0])
    shown = script.relative_to(root) if script.is_absolute() and root in script.parents else script
    return {
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": shlex.join([".venv/bin/python", str(shown), *sys.argv[1:]]),
    }


def write_json(path: Path, payload: dict) -> None:
    """Write `payload` as indented JSON to `path` (parents created), with the machine first unless
    the payload names it already and where the figures come from (`provenance`), and say so.
    A `markdown` entry is the table the script printed: the docs show it as it is here."""
    record = payload if "machine" in payload else {"machine": machine(), **payload}
    record = {**provenance(), **record}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


def render(paths: Sequence[str | Path], table_of: Callable[[dict], str]) -> None:
    """Write the `markdown` table of results files measured before the files held their own, from
    the figures they hold (`table_of(record)`, the table the script prints), and print it."""
    for path in map(Path, paths):
        record = json.loads(path.read_text())
        record["markdown"] = table_of(record)
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"{path}:\n{record['markdown']}")


def markdown_rows(columns: Sequence[Column], rows: list[dict]) -> str:
    """A markdown table of `rows`: the titles, the separator, then one line per row ("n/a" for None)."""
    lines = [
        "| " + " | ".join(title for _, title, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = ["n/a" if row[key] is None else form.format(row[key]) for key, _, form in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_row(result: Any, **fields: Any) -> dict:
    """One row of an experiment run once per seed (`mnist1d_table.ExperimentResult`): `fields`
    first, then its test accuracy's mean and spread, its train seconds' mean and maximum, each run."""
    accuracies = [run.test_accuracy for run in result.runs]
    seconds = [run.train_seconds for run in result.runs]
    return {
        **fields,
        "experiment": result.experiment,
        "mean_accuracy": statistics.fmean(accuracies),
        "std_accuracy": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "mean_train_seconds": statistics.fmean(seconds),
        "max_train_seconds": max(seconds),
        "runs": [asdict(run) for run in result.runs],
    }


def accuracy_cells(row: dict) -> tuple[str, str, str]:
    """A `seeds_row`'s table cells: accuracy mean ± std, each seed's, train seconds mean (max)."""
    per_seed = " / ".join(f"{run['test_accuracy']:.1%}" for run in row["runs"])
    accuracy = f"{row['mean_accuracy']:.2%} ± {row['std_accuracy']:.2%}"
    return accuracy, per_seed, f"{row['mean_train_seconds']:.0f} ({row['max_train_seconds']:.0f})"


def train_time_verdict(rows: list[dict], target_seconds: float) -> str:
    """Whether every run of `seeds_row` rows trained within `target_seconds`, in one line."""
    slowest = max(row["max_train_seconds"] for row in rows)
    verdict = "met" if slowest <= target_seconds else "MISSED"
    return f"slowest training {slowest:.0f} s (target <= {target_seconds:.0f} s): {verdict}"


def seeds_parser(description: str, experiments: Sequence[str], default_json: Path) -> argparse.ArgumentParser:
    """The arguments of a table of experiments x seeds: `--experiments`, `--seeds` (0 1 2), `--json`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--experiments", nargs="+", default=list(experiments))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=default_json)
    return parser


def announce_machine() -> float:
    """Print the machine, its speed now (`reference_seconds`) and load; return the reference."""
    reference = reference_seconds()
    print(f"machine: {machine()}; 2048x2048 float32 matmul {reference:.3f} s; load {describe_load()}")
    return reference
