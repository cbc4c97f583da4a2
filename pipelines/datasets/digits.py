"""`digits`: scikit-learn's bundled 8x8 handwritten digits as a TFDS dataset (no network)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.embedded import EmbeddedBuilder

_CITATION = """@misc{alpaydin1998optical,
  author = {Alpaydin, E. and Kaynak, C.},
  title = {Optical Recognition of Handwritten Digits},
  year = {1998},
  howpublished = {UCI Machine Learning Repository},
  doi = {10.24432/C50P49}
}"""

SPLIT_SEED = 20240101
SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.15, "test": 0.15}


class Digits(EmbeddedBuilder):
    """1,797 grey 8x8 digits (values 0-16 scaled to 0-255), 10 classes, fixed seeded splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Seeded 70/15/15 train/validation/test split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "scikit-learn's copy of the UCI optical recognition of handwritten digits test "
                "set: 1,797 8x8 images of 10 classes. Licence: CC BY 4.0."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        # 0..16 ink levels become 0..255 grey values so the images look like images.
        images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
        labels = bunch.target.astype(np.int64)
        order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
        n_train = int(round(SPLIT_FRACTIONS["train"] * len(labels)))
        n_validation = int(round(SPLIT_FRACTIONS["validation"] * len(labels)))
        parts = {
            "train": order[:n_train],
            "validation": order[n_train : n_train + n_validation],
            "test": order[n_train + n_validation :],
        }
        return {name: self._generate_examples(images[idx], labels[idx], idx) for name, idx in parts.items()}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray, ids: np.ndarray):
        for image, label, original_index in zip(images, labels, ids, strict=True):
            yield int(original_index), {"image": image, "label": int(label)}
