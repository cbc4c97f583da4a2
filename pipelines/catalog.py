"""Names of the TFDS catalog, read lazily (importing TFDS costs seconds)."""

from __future__ import annotations

import functools


@functools.cache
def catalog_names() -> frozenset[str]:
    """Every dataset name TFDS knows, without its versions or configs."""
    import tensorflow_datasets as tfds

    return frozenset(tfds.list_builders(with_community_datasets=False))
