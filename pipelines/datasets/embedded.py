"""What the embedded builders share: they generate their data locally, so TFDS' download notices
("Downloading and preparing dataset Unknown size ...") would only mislead."""

from __future__ import annotations

import tensorflow_datasets as tfds


class EmbeddedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A TFDS builder whose data needs no network: it prepares without TFDS' download notices."""

    def _log_download_bytes(self) -> None:
        """Nothing is downloaded; TFDS would print sizes it does not know."""

    def _log_download_done(self) -> None:
        """Generating a few thousand local examples needs no announcement."""
