"""Typed experiment configuration: YAML files plus dotted `key=value` overrides, validated once.

An experiment file holds one experiment (`name`, `data`, `model`, `train`, ...) or a suite that
lists shipped experiments (`experiments: [mlp-digits, cnn-mnist1d]`) with shared overrides.
The schema is split by section (`data`, `model`, `train`, `results`: evaluate, export and
tracking, `tune`); `experiment` puts the sections together and `loading` reads experiment files.
The names below are the package's public ones. Nothing here imports TensorFlow.
"""

from pipelines.config.base import ConfigError, StrictModel
from pipelines.config.data import (
    DELIMITER_NAMES,
    EMBEDDED_DATASETS,
    MISSING_TOKENS,
    SEQUENCE_DATASETS,
    DataConfig,
)
from pipelines.config.experiment import ExperimentConfig, flatten
from pipelines.config.loading import (
    experiment_path,
    load_experiment,
    load_experiments,
    load_yaml,
    parse_override,
    resolve,
    shipped_experiments,
)
from pipelines.config.model import (
    AUDIO_ARCHITECTURES,
    TEXT_ARCHITECTURES,
    AudioInputConfig,
    BuilderConfig,
    CNNConfig,
    GANConfig,
    LSTMConfig,
    MLPConfig,
    ModelConfig,
    RecurrentConfig,
    RNNConfig,
    TextInputConfig,
)
from pipelines.config.results import EvaluateConfig, ExportConfig, TrackingConfig
from pipelines.config.train import TrainConfig
from pipelines.config.tune import SearchRange, TuneConfig

__all__ = [
    "AUDIO_ARCHITECTURES",
    "DELIMITER_NAMES",
    "EMBEDDED_DATASETS",
    "MISSING_TOKENS",
    "SEQUENCE_DATASETS",
    "TEXT_ARCHITECTURES",
    "AudioInputConfig",
    "BuilderConfig",
    "CNNConfig",
    "ConfigError",
    "DataConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "ExportConfig",
    "GANConfig",
    "LSTMConfig",
    "MLPConfig",
    "ModelConfig",
    "RNNConfig",
    "RecurrentConfig",
    "SearchRange",
    "StrictModel",
    "TextInputConfig",
    "TrackingConfig",
    "TrainConfig",
    "TuneConfig",
    "experiment_path",
    "flatten",
    "load_experiment",
    "load_experiments",
    "load_yaml",
    "parse_override",
    "resolve",
    "shipped_experiments",
]
