"""`deeparch --help` and `deeparch list` answer without importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from pipelines.cli import main
try:
    status = main({args!r})
except SystemExit as exit_:
    status = exit_.code
assert status == 0, status
HEAVY_MODULES = ("tensorflow", "keras", "mlflow", "tensorflow_datasets")
heavy = sorted(name for name in HEAVY_MODULES if name in sys.modules)
print("HEAVY:", heavy)
"""


def _heavy_modules_after(args: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_help_does_not_import_tensorflow():
    output = _heavy_modules_after(["--help"])
    assert "usage: deeparch" in output
    assert "HEAVY: []" in output


def test_list_does_not_import_tensorflow_and_names_everything():
    output = _heavy_modules_after(["list"])
    assert "HEAVY: []" in output
    assert "mlp" in output and "cnn" in output
    assert "digits" in output and "mnist1d" in output
    assert "cnn-mnist1d" in output and "default" in output
