"""A user's own model builder (`model: {builder: pkg.mod:fn, params: {...}}`): found and its params
checked against its signature and type hints when the config is resolved, before any run exists.

Importing the builder's module is the only heavy step here (it usually imports Keras).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from models import registry
from pipelines.config.base import ConfigError
from pipelines.config.model import BuilderConfig

_KEYWORDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def check_builder(model: BuilderConfig, folder: Path | None, source: str) -> None:
    """Import `model.builder` (from `folder`, recorded as `model.path`, when its module lives there)
    and check `model.params` against it, keeping the values its type hints convert them to."""
    if model.path is None and folder is not None:
        found = registry.module_folder(model.builder, folder)
        if found is not None:
            model.path = str(found)
    try:
        builder = registry.get_builder(model.builder, model.path)
    except registry.BuilderImportError as error:
        beside = f" ({folder})" if folder is not None else ""
        _refuse(
            source,
            f"model.builder: {model.builder!r} cannot be used: {error}; allowed: module:function on the "
            f"Python path or beside the experiment file{beside}",
        )
    problems, values = checked_params(model.builder, builder, model.params)
    if problems:
        _refuse(source, *problems)
    model.params = values


def checked_params(
    name: str, builder: Callable[..., Any], params: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Problems of `params` as keyword arguments of `builder` after its first (the DataSpec), one
    line each naming the field, and the params as its type hints convert them."""
    parameters = list(inspect.signature(builder).parameters.values())
    if not parameters or parameters[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, *_KEYWORDS):
        return [
            f"model.builder: {name!r} takes no DataSpec as its first argument; allowed: fn(spec, ...)"
        ], {}
    keywords = {p.name: p for p in parameters[1:] if p.kind in _KEYWORDS}
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    problems = [
        f"model.params.{key}: unknown parameter of {name}; allowed: {', '.join(keywords) or 'none'}"
        for key in params
        if key not in keywords and not any_keyword
    ]
    problems += [
        f"model.params.{key}: missing; {name} requires it"
        for key, parameter in keywords.items()
        if parameter.default is inspect.Parameter.empty and key not in params
    ]
    hints = _type_hints(builder)
    values = dict(params)
    for key, value in params.items():
        adapter = _adapter(hints.get(key))
        if adapter is None:
            continue
        try:
            values[key] = adapter.validate_python(value)
        except ValidationError as error:
            reason = error.errors()[0]["msg"]
            problems.append(
                f"model.params.{key}: {value!r} is not allowed: {reason}; allowed: {_shown(hints[key])}"
            )
    return problems, values


def _type_hints(builder: Callable[..., Any]) -> dict[str, Any]:
    """The builder's resolved type hints; none when they cannot be resolved (names imported only
    for type checkers)."""
    try:
        return typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001 - any failure to evaluate a user's annotations means "no hints"
        return {}


def _adapter(hint: Any) -> TypeAdapter | None:
    """A pydantic validator of `hint`, or None for a hint pydantic cannot check (a Keras class)."""
    if hint is None or hint is Any:
        return None
    try:
        return TypeAdapter(hint)
    except Exception:  # noqa: BLE001 - pydantic refuses arbitrary classes in several ways
        return None


def _shown(hint: Any) -> str:
    """A type hint as a user wrote it: `int`, `Sequence[int]`, `Literal['relu', 'gelu']`."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def _refuse(source: str, *problems: str) -> typing.NoReturn:
    raise ConfigError(f"invalid experiment config ({source}):\n  " + "\n  ".join(problems))
