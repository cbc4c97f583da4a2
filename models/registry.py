"""The registry of model builders: a name or an import path -> `build(spec, **hparams)`.

A built-in family is a name registered here (`mlp` -> `models.mlp:build_mlp`); a user's own builder
is named by its import path (`my_models.resnet:build`), found on the Python path or in a folder
given with it (the experiment file's). Both are imported the same way, lazily, so that listing
architectures does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
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
# Module name -> digest of its file when it was imported: an edited file is imported again.
_IMPORTED_DIGESTS: dict[str, str] = {}


class BuilderImportError(ImportError):
    """A builder's module or function cannot be found: the message says which and why."""


def architectures() -> list[str]:
    """Names of the registered architectures, sorted."""
    return sorted(_BUILDERS)


def reference(name: str) -> str:
    """The `module:function` import path of a registered name, or `name` itself when it is one."""
    if name in _BUILDERS:
        return _BUILDERS[name]
    if ":" not in name:
        raise KeyError(
            f"unknown architecture {name!r}; allowed: {', '.join(architectures())} or module:function"
        )
    return name


def get_builder(name: str, folder: str | Path | None = None) -> Callable[..., keras.Model]:
    """The builder function registered under `name`, or at the import path `name`, whose module is
    looked for in `folder` first when given."""
    module_name, _, function_name = reference(name).partition(":")
    builder = getattr(import_module(module_name, folder), function_name, None)
    if not callable(builder):
        raise BuilderImportError(f"module {module_name!r} has no function {function_name!r}")
    return builder


def build(name: str, spec: DataSpec, folder: str | Path | None = None, **hparams: Any) -> keras.Model:
    """Build an uncompiled Keras model with the builder `name` for data described by `spec`."""
    return get_builder(name, folder)(spec, **hparams)


def module_folder(name: str, folder: str | Path) -> Path | None:
    """`folder`, resolved, when the module of builder `name` lives there; else None."""
    top_level = reference(name).partition(":")[0].split(".")[0]
    found = importlib.machinery.PathFinder.find_spec(top_level, [str(folder)])
    return Path(folder).resolve() if found is not None else None


def source_file(name: str, folder: str | Path | None = None) -> Path:
    """The file of the module that defines builder `name` (what its source digest hashes)."""
    module_name = reference(name).partition(":")[0]
    return Path(import_module(module_name, folder).__file__)


def source_digest(name: str, folder: str | Path | None = None) -> str:
    """SHA-256 of the builder's module file: a changed builder is a different model."""
    return _file_digest(source_file(name, folder))


def import_module(module_name: str, folder: str | Path | None = None) -> ModuleType:
    """Import `module_name`, from `folder` when given (else the Python path), again when its file
    changed since it was imported (a builder edited between two runs of one process)."""
    search = str(Path(folder).resolve()) if folder is not None else None
    module = sys.modules.get(module_name)
    if module is not None and search is not None and not _lives_in(module, search):
        # Another folder's module of the same name: forget it and the rest of its package.
        package = module_name.split(".")[0]
        for name in [name for name in sys.modules if name == package or name.startswith(f"{package}.")]:
            del sys.modules[name]
        module = None
    if search is not None:
        sys.path.insert(0, search)
    try:
        if module is None:
            importlib.invalidate_caches()  # a module file written since this process looked
            module = importlib.import_module(module_name)
        elif _IMPORTED_DIGESTS.get(module_name) not in (None, _file_digest(Path(module.__file__))):
            module = importlib.reload(module)
    except Exception as error:  # noqa: BLE001 - a user's module may fail in any way while it loads
        raise BuilderImportError(
            f"module {module_name!r} cannot be imported: {type(error).__name__}: {error}"
        ) from error
    finally:
        if search is not None:
            sys.path.remove(search)
    if getattr(module, "__file__", None):
        _IMPORTED_DIGESTS[module_name] = _file_digest(Path(module.__file__))
    return module


def _lives_in(module: ModuleType, folder: str) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(folder)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
