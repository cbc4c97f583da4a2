"""The registry of model builders: architecture name -> `build_<arch>(spec, **hparams)`.

Builders are imported lazily so that listing architectures does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from models.spec import DataSpec

if TYPE_CHECKING:
    import keras

# name -> "module:function"; a later family adds one line here.
_BUILDERS: dict[str, str] = {
    "mlp": "models.mlp:build_mlp",
    "cnn": "models.cnn:build_cnn",
    "gan": "models.gan:build_gan",
    "rnn": "models.recurrent:build_rnn",
    "lstm": "models.recurrent:build_lstm",
}


def architectures() -> list[str]:
    """Names of the registered architectures, sorted."""
    return sorted(_BUILDERS)


def get_builder(name: str) -> Callable[..., keras.Model]:
    """The builder function registered under `name`."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown architecture {name!r}; allowed: {', '.join(architectures())}")
    module_name, function_name = _BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build(name: str, spec: DataSpec, **hparams: Any) -> keras.Model:
    """Build an uncompiled Keras model of architecture `name` for data described by `spec`."""
    return get_builder(name)(spec, **hparams)
