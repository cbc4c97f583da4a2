"""What a trained model serves, and example inputs for it (MLflow input examples, parity batches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

    from models.spec import DataSpec
    from pipelines.config import DataConfig
    from pipelines.data import PreparedDataset

LATENT_INPUT = "latent"
LABELS_INPUT = "labels"
# The last layer of an image generator's servable: [0, 1] model pixels to [0, 255] image values.
PIXELS_LAYER = "pixels"
GENERATE_BATCH = 256  # samples a generator draws at once


def servable(model: keras.Model) -> keras.Model:
    """The model to log and export: a GAN serves its generator, every other model itself."""
    serving_model = getattr(model, "serving_model", None)
    return serving_model() if callable(serving_model) else model


def is_generator(model: keras.Model) -> bool:
    """True for a servable generator (it reads a latent batch, not data)."""
    return any(tensor.name == LATENT_INPUT for tensor in model.inputs)


def emits_pixels(model: keras.Model) -> bool:
    """True for a generator that serves images in [0, 255] (the data's model range is [0, 1])."""
    return any(layer.name == PIXELS_LAYER for layer in model.layers)


def generate(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """A servable generator's samples in the data's model range ([0, 1] for images), as the
    prepared data and the classifiers trained on it hold them."""
    arranged = model_inputs(model, inputs)
    if len(next(iter(inputs.values()))) <= GENERATE_BATCH:
        # One batch (a sample grid every few epochs): a direct call. `predict` would trace a
        # function for each new servable and build a dataset, 0.3 s of a 0.4 s grid at 32 px.
        samples = np.asarray(model(arranged, training=False))
    else:
        samples = np.asarray(model.predict(arranged, batch_size=GENERATE_BATCH, verbose=0))
    return samples / 255.0 if emits_pixels(model) else samples


def example_inputs(
    model: keras.Model, dataset: PreparedDataset, count: int, seed: int = 0
) -> np.ndarray | dict[str, np.ndarray]:
    """`count` inputs the servable accepts: test examples, or latent noise (and labels) for a generator."""
    if not is_generator(model):
        return dataset.arrays("test", count).x
    return generator_inputs(model, count, seed, dataset.spec.num_classes or 1)


def generator_inputs(model: keras.Model, count: int, seed: int, num_classes: int) -> dict[str, np.ndarray]:
    """Seeded standard-normal latents, and labels cycling through the classes when conditional."""
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for tensor in model.inputs:
        if tensor.name == LATENT_INPUT:
            inputs[LATENT_INPUT] = rng.standard_normal((count, tensor.shape[-1])).astype(np.float32)
        elif tensor.name == LABELS_INPUT:
            inputs[LABELS_INPUT] = (np.arange(count) % num_classes).astype(np.int32)
    return inputs


def model_inputs(model: keras.Model, inputs: np.ndarray | dict[str, np.ndarray]):
    """Inputs in the structure Keras expects: one array, a dict for a model built on named inputs
    (a table's columns), else a list in `model.inputs` order."""
    if isinstance(inputs, dict) and isinstance(getattr(model, "_inputs_struct", None), dict):
        return inputs
    if isinstance(inputs, dict):
        ordered = [inputs[tensor.name] for tensor in model.inputs]
        return ordered if len(ordered) > 1 else ordered[0]
    return inputs


def raw_rows(spec: DataSpec, x: dict[str, np.ndarray]):
    """A table's rows as read from its split (`PreparedDataset.arrays(...).x`) as a user holds
    them: a pandas DataFrame with the file's column names, an empty cell where the file had one."""
    import pandas as pd

    from pipelines.data.table import EPOCH

    columns = {}
    for column in spec.columns:
        values = x[column.key]
        if column.kind == "categorical":
            values = [None if value == "" else value for value in values]
        elif column.date_format:  # days since EPOCH, written back as the file wrote them
            dates = pd.Timestamp(EPOCH, tz="UTC") + pd.to_timedelta(np.asarray(values, np.float64), unit="D")
            values = [None if pd.isna(date) else date.strftime(column.date_format) for date in dates]
        columns[column.name] = values
    return pd.DataFrame(columns)


def table_model_config(dataset: PreparedDataset, data: DataConfig) -> dict:
    """What the logged model of a table knows of it (`pipelines.table_serving.TableModel`): its
    columns and classes, and how the file wrote an empty cell and a decimal mark, so that rows read
    from another such file are read as the training rows were."""
    return {
        "columns": [
            {"name": c.name, "key": c.key, "kind": c.kind, "date_format": c.date_format}
            for c in dataset.spec.columns
        ],
        "class_names": list(dataset.class_names),
        "task": dataset.spec.task,
        "missing": list(data.na_values),
        "decimal": data.decimal,
    }
