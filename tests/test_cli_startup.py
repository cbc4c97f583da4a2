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


# `deeparch` ends with os._exit after the atexit handlers: statuses, output and the handlers that
# libraries register after it starts (MLflow ends its runs in one) must all survive that.
EXIT_PROBE = """
import atexit, sys
import pipelines.cli as cli
def main():
    atexit.register(lambda: print("a library's atexit handler ran"))
    print("output before the exit", end="")  # no newline: flushed by the exit, not by print
    {body}
cli.main = main
cli.entry()
"""


def _entry(body: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", EXIT_PROBE.format(body=body)], capture_output=True, text=True, timeout=60
    )


def test_the_command_exits_with_mains_status_after_every_atexit_handler_and_all_output():
    for body, status in (("return 0", 0), ("return 7", 7), ("sys.exit(2)", 2), ("sys.exit('stop')", 1)):
        result = _entry(body)
        assert result.returncode == status, (body, result.stderr)
        assert result.stdout == "output before the exita library's atexit handler ran\n"
    assert "stop" in _entry("sys.exit('stop')").stderr


def test_an_unexpected_error_prints_its_traceback_and_exits_1():
    result = _entry("return 1 / 0")
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr and "Traceback" in result.stderr
    assert result.stdout.endswith("a library's atexit handler ran\n")


def test_usage_errors_and_help_keep_their_statuses_through_the_console_entry():
    module = [sys.executable, "-m", "pipelines.cli"]
    assert subprocess.run([*module, "--help"], capture_output=True, text=True).returncode == 0
    missing = subprocess.run([*module, "run"], capture_output=True, text=True)
    assert missing.returncode == 2 and "-e/--experiment" in missing.stderr
    unknown = subprocess.run([*module, "run", "-e", "no-such-experiment"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "no-such-experiment" in unknown.stderr
