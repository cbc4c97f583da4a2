"""What each stage hands to the next: run ids, the data, the model and where things went."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

    from pipelines.data import PreparedDataset


@dataclass
class PrepareResult:
    """The prepare run and the dataset it described."""

    run_id: str
    dataset: PreparedDataset
    reused: bool = False


@dataclass
class TrainResult:
    """The train run, its logged model and the trained Keras model itself."""

    run_id: str
    model_uri: str
    model: keras.Model
    history: dict[str, list[float]] = field(default_factory=dict)
    reused: bool = False
    # Set when a callback stopped training before `train.epochs`: the run is not the config's result.
    stopped_epoch: int | None = None


@dataclass
class EvaluateResult:
    """The evaluate run and its test metrics."""

    run_id: str
    metrics: dict[str, float]
    reused: bool = False


@dataclass
class ExportResult:
    """The export run, the SavedModel folder and the measured reload parity."""

    run_id: str
    path: Path
    parity: float
    reused: bool = False
    registered_version: str | None = None
