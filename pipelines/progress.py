"""What a person watching `deeparch run` reads: a line as each experiment and each stage starts,
with its place in the suite and the time so far, e.g. `[3/6] cnn-mnist1d · train (0:42)`."""

from __future__ import annotations

import time
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
