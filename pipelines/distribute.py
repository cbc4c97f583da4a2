"""tf.distribute: which strategy trains, and which process of a cluster is the chief.

`train.strategy` picks one: `default` (one device, or the GPU TensorFlow finds), `mirrored`
(every local GPU, else every logical CPU device) or `multi_worker` (the cluster in TF_CONFIG).
A multi-worker strategy must exist before TensorFlow runs any op, so the runner creates it first.
"""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


@functools.cache
def strategy(name: str) -> tf.distribute.Strategy:
    """The process-wide strategy called `name` (created once: TensorFlow allows no second)."""
    import tensorflow as tf

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            from pipelines.config import ConfigError

            raise ConfigError(
                "train.strategy: 'multi_worker' needs the TF_CONFIG environment variable describing "
                "the cluster; allowed without it: default, mirrored"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """True unless TF_CONFIG names this process as a non-chief member of a cluster."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    config = json.loads(raw)
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    has_chief = "chief" in config.get("cluster", {})
    return kind == "worker" and index == 0 and not has_chief


def worker_count(name: str) -> int:
    """Processes that train together: the cluster's workers (and chief) for multi_worker, else 1."""
    raw = os.environ.get("TF_CONFIG")
    if name != "multi_worker" or not raw:
        return 1
    cluster = json.loads(raw).get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def prepare_for_fit(model, strategy: tf.distribute.Strategy) -> None:
    """Work around Keras 3 with MultiWorkerMirroredStrategy (keras-team/keras#20585,
    tensorflow/tensorflow#72388); call `fit` inside `strategy.scope()` afterwards.

    - `_maybe_symbolic_build` passes the whole `(x, y)` batch to `strategy.reduce`, which under a
      multi-worker strategy takes one value and fails on the tuple. A model that does not pin its
      strategy defers that build to tracing, and `fit` inside the scope still distributes.
    - Each step reduces the logged metrics with a hard-coded "auto" (= "mean" along axis 0),
      which fails on scalars under a multi-worker strategy. The metric values are already
      aggregated across replicas, so "first" is the right reduction: the patch below makes
      "auto" mean "first" under a multi-worker strategy and changes nothing otherwise.
    """
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    model._distribute_strategy = None
    _patch_keras_metric_reduction()


@functools.cache
def _patch_keras_metric_reduction() -> None:
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            reduction = "first"
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
