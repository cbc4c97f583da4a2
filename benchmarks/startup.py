"""How fast the CLI answers: wall time of `deeparch --help` and `deeparch list`, best and median.

Each command runs `--runs` times as a fresh subprocess (the console script of the interpreter's
environment), after one untimed run that warms the file cache. Neither command may import
TensorFlow (tests/test_cli_startup.py checks that); the target for `--help` is 0.5 s.

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --runs 20 --json /tmp/startup.json
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS_DIR, load_average, write_json

TARGET_HELP_SECONDS = 0.5
COMMANDS = (("deeparch --help", ["--help"]), ("deeparch list", ["list"]))


def deeparch_executable() -> str:
    """The `deeparch` console script beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "deeparch"
    if beside.is_file():
        return str(beside)
    found = shutil.which("deeparch")
    if found is None:
        raise SystemExit("no `deeparch` console script: install the project first (make install)")
    return found


def wall_times(command: list[str], runs: int) -> list[float]:
    """Seconds of each of `runs` runs of `command`, after one warm-up run."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    """Time each command, print a markdown table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "startup.json", help="results file")
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)

    executable = deeparch_executable()
    load_before = load_average()
    rows = []
    for label, args in COMMANDS:
        times = wall_times([executable, *args], arguments.runs)
        rows.append({"command": label, "best": min(times), "median": statistics.median(times), "runs": times})
    load_after = load_average()

    print(f"load average {load_before:.2f} -> {load_after:.2f}\n")
    lines = ["| command | best s | median s | runs |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| `{row['command']}` | {row['best']:.3f} | {row['median']:.3f} | {arguments.runs} |")
    table = "\n".join(lines)
    print(table)
    help_median = rows[0]["median"]
    verdict = "met" if help_median <= TARGET_HELP_SECONDS else "MISSED"
    print(f"\n`deeparch --help` median {help_median:.3f} s (target <= {TARGET_HELP_SECONDS} s): {verdict}")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "commands": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
