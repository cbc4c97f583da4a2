"""One experiment: its name, seed and every section, checked together."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from pipelines.config.base import StrictModel
from pipelines.config.data import SEQUENCE_DATASETS, DataConfig
from pipelines.config.model import BuilderConfig, CNNConfig, ModelConfig
from pipelines.config.results import EvaluateConfig, ExportConfig, TrackingConfig
from pipelines.config.train import TrainConfig
from pipelines.config.tune import TuneConfig


class ExperimentConfig(StrictModel):
    """One experiment: a dataset, a model and how to train, evaluate and export it."""

    name: str = Field(description="Experiment name, `<architecture>-<dataset>` when shipped.")
    description: str = Field("", description="One line on what this experiment shows.")
    seed: int = Field(0, description="Seed for weights, shuffling and splits.")
    data: DataConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()
    tracking: TrackingConfig = TrackingConfig()
    tune: TuneConfig = TuneConfig()
    search_only_fields: ClassVar[frozenset[str]] = frozenset({"tune"})
    # What `resolve` changed so that the experiment fits its data, one sentence each (not a field:
    # neither in the config's hash nor in its YAML).
    _adjustments: list[str] = PrivateAttr(default_factory=list)

    @field_validator("model", mode="before")
    @classmethod
    def _builder_is_custom(cls, model: Any) -> Any:
        # `model: {builder: pkg.mod:fn, params: {...}}` needs no `architecture: custom`.
        if isinstance(model, dict) and "builder" in model and "architecture" not in model:
            return {"architecture": "custom", **model}
        return model

    @model_validator(mode="after")
    def _image_augmentation_on_images(self) -> ExperimentConfig:
        # Known here for CSV files and the embedded sequence datasets; the builder refuses the rest.
        augmentation = self.model.image_augmentation() if isinstance(self.model, CNNConfig) else {}
        if not augmentation:
            return self
        if self.data.source == "csv":
            holds = "a CSV file's rows"
        elif self.data.source == "text":
            holds = "text"
        elif self.data.source == "audio":
            holds = "audio"
        elif self.data.source == "tfds" and self.data.name in SEQUENCE_DATASETS:
            holds = f"the sequences of {self.data.name!r}"
        else:
            return self
        fields = ", ".join(f"model.{name}={value}" for name, value in augmentation.items())
        raise ValueError(
            f"{fields} augment images, but the data is {holds}; allowed: model.random_flip=none, "
            "model.random_translation=0, model.random_contrast=0"
        )

    @property
    def architecture(self) -> str:
        """The registered architecture name, or a custom builder's import path."""
        return self.model.builder if isinstance(self.model, BuilderConfig) else self.model.architecture

    @property
    def builder_folder(self) -> str | None:
        """The folder a custom builder's module is imported from (None: the Python path)."""
        return self.model.path if isinstance(self.model, BuilderConfig) else None

    @property
    def adjustments(self) -> list[str]:
        """What was changed from the experiment file so that it fits the data, one sentence each."""
        return list(self._adjustments)

    def hparams(self) -> dict[str, Any]:
        """Keyword arguments for the model builder."""
        if isinstance(self.model, BuilderConfig):
            return dict(self.model.params)
        pipeline_only = getattr(self.model, "pipeline_only_fields", frozenset())
        return self.model.model_dump(exclude={"architecture", *pipeline_only})

    def section_hash(self, *sections: str) -> str:
        """Short content hash of the given sections (all that shape a run when none), for tags and
        caching."""
        dumped = self.model_dump(mode="json")
        chosen = {key: dumped[key] for key in sections} if sections else self._run_sections(dumped)
        canonical = json.dumps(chosen, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def flat_params(self) -> dict[str, str]:
        """Every config value as a dotted `key -> str` mapping, for MLflow params."""
        return flatten(self._run_sections(self.model_dump(mode="json")))

    @classmethod
    def _run_sections(cls, dumped: dict[str, Any]) -> dict[str, Any]:
        # How to search (`tune`) is not part of what a run is: a trial and `deeparch run` of the
        # config it found are the same run (same hash, no tune.* params).
        return {key: value for key, value in dumped.items() if key not in cls.search_only_fields}

    def to_yaml(self) -> str:
        """The fully resolved config as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dict -> dotted keys with string values (lists stay as one JSON value)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = json.dumps(value) if isinstance(value, list) else str(value)
    return flat
