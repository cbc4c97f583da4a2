"""Experiment files: the shipped ones, a user's YAML, suites of them, and dotted `key=value`
overrides applied before the whole is validated once."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from pipelines.config.base import ConfigError
from pipelines.config.experiment import ExperimentConfig
from pipelines.config.model import TEXT_ARCHITECTURES, BuilderConfig, ModelConfig

# libyaml's parser where PyYAML was built with it (the wheels are): the same documents, about 9x
# faster than the pure-Python one. A pipeline run reads its experiment file several times and
# parses each override, about 10 ms a file in pure Python.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, with libyaml's parser when it is there."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def shipped_experiments() -> list[str]:
    """Names of the experiment files shipped in pipelines/experiments."""
    folder = resources.files("pipelines.experiments")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def experiment_path(name_or_path: str) -> Path:
    """The YAML file of a shipped experiment name, or the user's path."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"experiment file {name_or_path!r} does not exist")
        return candidate
    shipped = resources.files("pipelines.experiments") / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ConfigError(
            f"experiment {name_or_path!r} is neither a shipped experiment nor a YAML file; "
            f"shipped: {', '.join(shipped_experiments())}"
        )
    return Path(str(shipped))


def load_experiments(name_or_path: str, overrides: list[str] = ()) -> list[ExperimentConfig]:
    """Every experiment a file names (one, or a suite's list), with the user's overrides applied
    last (after a suite's own)."""
    return _load_experiments(name_or_path, [], list(overrides))


def _load_experiments(name_or_path: str, inherited: list[str], given: list[str]) -> list[ExperimentConfig]:
    """`inherited`: the overrides of the suites that name this file; `given`: the user's."""
    path = experiment_path(name_or_path)
    raw = _read_yaml(path)
    if "experiments" in raw:
        unknown = set(raw) - {"experiments", "description", "overrides"}
        if unknown:
            raise ConfigError(
                f"suite {name_or_path!r} has unknown key(s) {', '.join(sorted(unknown))}; "
                "allowed: experiments, description, overrides"
            )
        shared = [str(item) for item in raw.get("overrides") or []]
        configs: list[ExperimentConfig] = []
        for member in raw["experiments"] or []:
            name, own = _suite_member(member, name_or_path)
            configs.extend(_load_experiments(name, [*inherited, *shared, *own], given))
        return configs
    return [resolve(raw, [*inherited, *given], source=name_or_path, given=given, folder=path.parent)]


def _suite_member(member: Any, suite: str) -> tuple[str, list[str]]:
    """A suite entry: `name`, or `{experiment: name, overrides: [key=value, ...]}`."""
    if isinstance(member, str):
        return member, []
    if (
        isinstance(member, dict)
        and isinstance(member.get("experiment"), str)
        and set(member) <= {"experiment", "overrides"}
    ):
        return member["experiment"], [str(item) for item in member.get("overrides") or []]
    raise ConfigError(
        f"suite {suite!r} entry {member!r} is not allowed; give a name or "
        "{experiment: NAME, overrides: [key=value, ...]}"
    )


def load_experiment(name_or_path: str, overrides: list[str] = ()) -> ExperimentConfig:
    """Exactly one experiment; a suite is an error here."""
    configs = load_experiments(name_or_path, overrides)
    if len(configs) != 1:
        names = ", ".join(config.name for config in configs)
        raise ConfigError(f"{name_or_path!r} is a suite of {len(configs)} experiments ({names}); name one")
    return configs[0]


def resolve(
    raw: dict[str, Any],
    overrides: list[str] = (),
    source: str = "config",
    given: list[str] | None = None,
    folder: Path | None = None,
) -> ExperimentConfig:
    """Validate a raw config dict after applying dotted overrides, then fit it to its data.

    `given` are the overrides the user typed (default: all of them): what the experiment file
    sets is adapted to the data with a note in `adjustments`, what the user set is refused.
    `folder` (the experiment file's) is where a custom builder's module is looked for first.
    """
    tree = copy.deepcopy(raw)
    parsed = [parse_override(item) for item in overrides]
    overridden_model_keys = {path[1] for path, _ in parsed if len(path) > 1 and path[0] == "model"}
    for path, value in parsed:
        if path in (["model", "architecture"], ["model", "builder"]) and isinstance(tree.get("model"), dict):
            current = dict(tree["model"])
            if "builder" in current:
                current.setdefault("architecture", "custom")
            if current.get(path[1]) != value:
                # Another architecture's (or builder's) hyper-parameters would be unknown keys:
                # keep only those the command line sets.
                tree["model"] = {
                    key: item for key, item in tree["model"].items() if key in overridden_model_keys
                }
        if path == ["data", "source"] and isinstance(tree.get("data"), dict):
            if tree["data"].get("source", "tfds") != value and ["data", "name"] not in [p for p, _ in parsed]:
                # The experiment's TFDS dataset name does not name the user's file: the name
                # defaults to the file's stem instead.
                tree["data"].pop("name", None)
        _set_path(tree, path, value)
    try:
        config = ExperimentConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
    if isinstance(config.model, BuilderConfig):
        from pipelines.builders import check_builder  # imports the user's module

        check_builder(config.model, folder, source)
    overridden = {".".join(path) for path, _ in parsed}
    typed = overridden if given is None else {".".join(parse_override(item)[0]) for item in given}
    own_data = config.data.source != "tfds" and bool(overridden & {"data.source", "data.path"})
    if own_data and "name" not in overridden:
        # The experiment's name is about its own data: the user's runs get an MLflow experiment
        # of their own instead of landing among, say, the MNIST-1D runs.
        config.name = f"{config.architecture}-{config.data.name}"
    if config.data.task == "forecast":
        _without_forecast_augmentation(config, typed, source)
    _text_column_for_text_models(config)
    return config


def _text_column_for_text_models(config: ExperimentConfig) -> None:
    """A model that reads text (rnn, lstm, cnn) pointed at a CSV reads its one non-numeric column
    as text, whatever numeric columns are beside it (an id, a rating); an MLP reads the numbers."""
    data = config.data
    if (
        data.source == "csv"
        and data.task != "forecast"
        and data.text_column is None
        and data.features is None
        and config.architecture in TEXT_ARCHITECTURES
    ):
        data.text_column = "auto"


def _without_forecast_augmentation(config: ExperimentConfig, typed: set[str], source: str) -> None:
    """A forecast reads its windows in time order, which circular shifts and amplitude scaling
    break: refuse the augmentation the user typed, drop (and note) the experiment file's."""
    fields = {
        f"train.{name}": value
        for name in ("augment_shift", "augment_scale")
        if (value := getattr(config.train, name))
    }
    typed_fields = [f"{key}={value}" for key, value in fields.items() if key in typed]
    if typed_fields:
        raise ConfigError(
            f"{' '.join(typed_fields)}: a forecast (data.task=forecast) reads its windows in time order, "
            "which circular shifts and amplitude scaling break; allowed: train.augment_shift=0 "
            "train.augment_scale=0"
        )
    if fields:
        config.train.augment_shift, config.train.augment_scale = 0, 0.0
        shown = " ".join(f"{key}={value}" for key, value in fields.items())
        config._adjustments.append(
            f"dropped {source}'s {shown} (a forecast reads its windows in time order, which circular "
            "shifts and amplitude scaling break)"
        )


def parse_override(item: str) -> tuple[list[str], Any]:
    """`train.epochs=3` -> (["train", "epochs"], 3); values are read as YAML."""
    key, separator, text = item.partition("=")
    if not separator or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} is not of the form key.path=value (e.g. train.epochs=3)")
    try:
        value = load_yaml(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key.strip().split("."), value


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} holds a value, not a section")
        node = child
    node[path[-1]] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = load_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"experiment file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"experiment file {str(path)!r} must hold a mapping of sections")
    return loaded


def _describe(error: ValidationError, source: str) -> str:
    """One line per problem: the field, the bad value, what is allowed."""
    lines = []
    for problem in error.errors():
        field, model = _field_and_model(problem["loc"])
        value = problem.get("input")
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields)) if model else "see the README"
            lines.append(f"{field}: unknown key; allowed keys: {allowed}")
        elif problem["type"] == "missing":
            lines.append(f"{field}: missing; it is required")
        elif problem["type"] == "union_tag_invalid":
            tags = problem.get("ctx", {}).get("expected_tags", "")
            lines.append(
                f"{field}.architecture: {value.get('architecture')!r} is not allowed; allowed: {tags}"
                if isinstance(value, dict)
                else f"{field}: {value!r} is not allowed; allowed architectures: {tags}"
            )
        elif problem["type"] == "union_tag_not_found":
            lines.append(f"{field}.architecture: missing; it is required")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            if isinstance(value, dict) or (value is None and problem["type"] == "value_error"):
                # A check across fields names them; a missing value needs no "None is not allowed".
                lines.append(f"{field}: {message}")
            else:
                lines.append(f"{field}: {value!r} is not allowed: {message}")
    return f"invalid experiment config ({source}):\n  " + "\n  ".join(lines)


def _field_and_model(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """Dotted field name of a pydantic error location, and the model that holds its last key."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] = f"{parts[-1]}[{part}]"
        elif index == 1 and loc[0] == "model" and _tag_model(part) is not None:
            continue  # the discriminated-union tag pydantic inserts, not a key of the user's
        else:
            parts.append(str(part))
    return ".".join(parts) or "config", _holder_model(loc)


def _holder_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model in which the last element of `loc` is (or would be) a key."""
    model: type[BaseModel] | None = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is None:
            model = _tag_model(part)  # the architecture tag that follows `model`, if that is what it is
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            model = _tag_model(part)
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif str(part) == "model":
            model = None  # resolved by the tag that follows
        else:
            model = None
    return model


def _tag_model(tag: Any) -> type[BaseModel] | None:
    """The model config class of an architecture name (a discriminated-union tag)."""
    from typing import get_args

    members = get_args(get_args(ModelConfig)[0])
    by_tag = {member.model_fields["architecture"].default: member for member in members}
    return by_tag.get(str(tag))
