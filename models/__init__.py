"""Keras model builders for the classic architectures. No MLflow, no file I/O."""

from models.registry import architectures, build, get_builder
from models.spec import DataSpec

__all__ = ["DataSpec", "architectures", "build", "get_builder"]
