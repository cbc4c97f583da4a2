"""What a person watching `deeparch run` reads: a line as each experiment and each stage starts,
with its place in the suite and the time so far, e.g. `[3/6] cnn-mnist1d · train (0:42)`, and not
the libraries' chatter (TensorFlow's start-up lines and warnings, TFDS progress bars)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Progress:
    """Counts the experiments of a suite (or the combinations of a sweep) and announces each
    experiment and stage on stdout as it starts."""

    total: int = 1
    started: float = field(default_factory=time.monotonic)
    position: int = 0
    experiment: str = ""

    def start(self, experiment: str, detail: str = "") -> None:
        """The next experiment begins: `[3/6] cnn-mnist1d (0:42)`, with `detail` after the name."""
        self.position += 1
        self.experiment = experiment
        self._announce(f"{experiment} {detail}".rstrip())

    def skip(self) -> None:
        """Count an experiment that needs no run (one that finished earlier), silently."""
        self.position += 1

    def stage(self, stage: str) -> None:
        """A stage of the current experiment begins: `[3/6] cnn-mnist1d · train (0:43)`."""
        self._announce(f"{self.experiment} · {stage}")

    def elapsed(self) -> str:
        """The time since the suite started, as m:ss (h:mm:ss past an hour)."""
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"

    def _announce(self, what: str) -> None:
        print(f"[{self.position}/{self.total}] {what} ({self.elapsed()})", flush=True)


def quiet_libraries() -> None:
    """Keep the libraries' chatter out of the user's terminal: TensorFlow's C++ start-up lines,
    absl and TensorFlow warnings, TFDS progress bars. (MLflow's and Keras' notices are quieted
    where they arise, in `tracking`.)"""
    with native_stderr_filtered():
        import absl.logging
        import tensorflow as tf
        import tensorflow_datasets as tfds

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")  # retracing notices from MLflow's input-example predictions
    tfds.disable_progress_bar()


# What TensorFlow's C++ code writes while it loads although TF_CPP_MIN_LOG_LEVEL asks for less:
# absl logs INFO lines before its logging is initialised, and says so.
_NATIVE_STDERR_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called|[IW]\d{4} "
    r"|To enable the following instructions: )"
)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Hold what native code writes to stderr (file descriptor 2) inside the block, then pass on
    all but TensorFlow's start-up INFO and WARNING lines (unless TF_CPP_MIN_LOG_LEVEL=0)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines(keepends=True):
                if not _NATIVE_STDERR_NOISE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
