"""The `evaluate`, `export` and `tracking` sections: what happens to a trained model's results."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
)

from pipelines.config.base import PositiveInt, StrictModel


class EvaluateConfig(StrictModel):
    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        None, description="Test accuracy a model must reach to be promoted."
    )
    evaluator: str | None = Field(
        None,
        description="GAN only: experiment whose classifier scores generated samples; default cnn-<dataset>.",
    )
    generated_samples: PositiveInt = Field(1000, description="GAN only: samples generated for the scores.")


class ExportConfig(StrictModel):
    dir: str = Field("exports", description="Folder that receives exported SavedModels.")
    parity_tolerance: Annotated[float, Field(gt=0.0)] = Field(
        1e-5,
        description="Largest allowed |Keras - SavedModel| output difference, relative to the largest "
        "|output| where that exceeds 1 (a price of 1e5 is only held to float32's 6e-8 of it).",
    )
    registered_model: str | None = Field(
        None, description="Register the trained model under this name in the MLflow model registry."
    )


class TrackingConfig(StrictModel):
    uri: str | None = Field(
        None, description="MLflow tracking URI; MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db."
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the name.")
