"""What the benchmark scripts share: where results go, the machine and its load, JSON and tables.

The scripts run as `.venv/bin/python benchmarks/<name>.py`, so this folder is `sys.path[0]` and
they import it as `common`. Nothing here imports TensorFlow or the pipeline.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

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


def write_json(path: Path, payload: dict) -> None:
    """Write `payload` as indented JSON to `path` (parents created), with the machine first unless
    the payload names it already, and say so."""
    record = payload if "machine" in payload else {"machine": machine(), **payload}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


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
