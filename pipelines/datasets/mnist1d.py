"""`mnist1d`: Greydanus' MNIST-1D generated locally by the `mnist1d` package (no network)."""

from __future__ import annotations

import functools

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.embedded import EmbeddedBuilder

_CITATION = """@inproceedings{greydanus2024scaling,
  title = {Scaling down Deep Learning with {MNIST}-{1D}},
  author = {Greydanus, Sam and Kobak, Dmitry},
  booktitle = {Proceedings of the 41st International Conference on Machine Learning},
  year = {2024}
}"""


class Mnist1d(EmbeddedBuilder):
    """The published MNIST-1D: 4,000 train / 1,000 test sequences of length 40, 10 classes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "make_dataset(get_dataset_args()) of the mnist1d package."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "MNIST-1D (Greydanus & Kobak): digit templates turned into 1-D signals, padded, "
                "sheared, scaled, translated and noised; the default arguments give the published "
                "4,000/1,000 split. Licence: Apache-2.0."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "x": tfds.features.Tensor(shape=(40,), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("x", "label"),
            homepage="https://github.com/greydanus/mnist1d",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        data = published()
        return {
            "train": self._generate_examples(data["x"], data["y"]),
            "test": self._generate_examples(data["x_test"], data["y_test"]),
        }

    def _generate_examples(self, signals: np.ndarray, labels: np.ndarray):
        for index, (signal, label) in enumerate(zip(signals, labels, strict=True)):
            yield index, {"x": signal.astype(np.float32), "label": int(label)}


@functools.cache
def published() -> dict[str, np.ndarray]:
    """The `mnist1d` package's published dataset (`x`, `y`, `x_test`, `y_test`, ...), generated once
    per process: 2 s of CPU each time."""
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())
