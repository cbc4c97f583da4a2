"""Figures the stages log to MLflow: learning curves, confusion matrix, sample grids, spectrograms,
forecasts. Matplotlib draws them, except image grids, which Pillow tiles (faster, see `_image_grid`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL.Image import Image as PILImage

GRID_CELL = 128  # pixels: the longer side of each image in a sample grid


def _figure(width: float, height: float, constrained: bool = True) -> Figure:
    # The object-oriented API needs no GUI backend and no global pyplot state.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def learning_curves(history: dict[str, Sequence[float]]) -> Figure:
    """One panel per metric, train and validation curves against the epoch.

    Margins are fixed in inches, room for a title above and tick labels of up to about six
    characters left of each panel: every train run logs this figure, and constrained layout
    measured every text twice more, half of the figure's 0.3 s here.
    """
    metrics = [name for name in history if not name.startswith("val_") and name != "learning_rate"]
    panels = max(1, len(metrics))
    width, height = 4.5 * panels, 3.5
    figure = _figure(width, height, constrained=False)
    panel_width = (width - 0.75 - 0.2 - 0.8 * (panels - 1)) / panels
    figure.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.2 / width,
        bottom=0.55 / height,
        top=1 - 0.35 / height,
        wspace=0.8 / panel_width,
    )
    axes = figure.subplots(1, panels, squeeze=False)[0]
    for axis, name in zip(axes, metrics, strict=False):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    return figure


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts of true (rows) against predicted (columns) classes."""
    size = max(4.0, 0.5 * len(class_names) + 2)
    figure = _figure(size, size)
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, shrink=0.8)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > threshold else "black",
        )
    return figure


def sample_grid(x: np.ndarray, titles: Sequence[str], columns: int = 8, title: str = "") -> Figure | PILImage:
    """Examples as a grid: images as one picture (a Pillow image), sequences as line plots (a
    matplotlib figure); `tracking.log_figure` logs either."""
    count = len(x)
    rows = int(np.ceil(count / columns))
    if count and np.asarray(x[0]).ndim == 3:
        return _image_grid(np.asarray(x), titles, rows, columns, title)
    return _sequence_grid(x, titles, rows, columns, title)


def _grid_panel(rows: int, columns: int, title: str) -> tuple[Figure, Axes]:
    """A sample grid's figure and the one panel its cells are drawn into (axes hidden), below a
    strip for the title."""
    figure = _figure(1.6 * columns, 1.5 * rows + 0.4, constrained=False)
    axis = figure.add_axes((0.0, 0.0, 1.0, 0.94 if title else 1.0))
    axis.set_axis_off()
    if title:
        figure.suptitle(title)
    return figure, axis


def _sequence_grid(
    sequences: Sequence[np.ndarray], titles: Sequence[str], rows: int, columns: int, title: str
) -> Figure:
    """Sequences as line plots in cells of one panel, each scaled to its own cell and titled
    above it, channel k in colour Ck. One panel, as for images: 32 panels of their own took
    0.6 s to draw and save, most of it laying out axes that are not shown."""
    figure, axis = _grid_panel(rows, columns, title)
    margin, label = 0.06, 0.18  # of a cell: around the plot, and above it for the title
    for index, sequence in enumerate(sequences):
        row, column = divmod(index, columns)
        values = np.asarray(sequence, dtype=np.float64).reshape(len(sequence), -1)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        scaled = (values - low) / (high - low) if high > low else np.full_like(values, 0.5)
        steps = np.linspace(column + margin, column + 1 - margin, len(values))
        bottom = -(row + 1) + margin
        for channel in range(values.shape[1]):
            axis.plot(steps, bottom + scaled[:, channel] * (1 - label - 2 * margin), color=f"C{channel}")
        axis.text(column + 0.5, -row - label + margin, titles[index], ha="center", va="bottom", fontsize=8)
    axis.set_xlim(0, columns)
    axis.set_ylim(-rows, 0)
    return figure


def _image_grid(images: np.ndarray, titles: Sequence[str], rows: int, columns: int, title: str) -> PILImage:
    """Images tiled by Pillow into one picture, each scaled to a cell of `GRID_CELL` pixels
    (nearest neighbour up, box filter down) under its title. Matplotlib took 0.14 s to draw and
    encode 32 photos at 128x128; this takes 0.05 s (`tracking.log_figure` encodes both), and the
    prepare stage draws one per run. One channel is shown dark on light (the range of all cells
    from white to black), colour as it is, clipped to [0, 1]."""
    from PIL import Image, ImageDraw, ImageFont

    count, height, width, channels = images.shape
    scale = GRID_CELL / max(height, width)
    cell_width, cell_height = max(1, round(width * scale)), max(1, round(height * scale))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    label, gap, top = 16, 8, 24 if title else 0  # pixels: a cell's title, between cells, the grid's title
    if channels == 1:
        low, high = float(np.nanmin(images)), float(np.nanmax(images))
        shown = 1.0 - (images[..., 0] - low) / (high - low if high > low else 1.0)
    else:
        shown = np.clip(images, 0.0, 1.0)
    pixels = np.round(np.nan_to_num(shown, nan=1.0) * 255).astype(np.uint8)
    picture = Image.new(
        "RGB", (gap + columns * (cell_width + gap), top + rows * (label + cell_height + gap)), "white"
    )
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text(
            (picture.width / 2, 4), title, fill="black", font=ImageFont.load_default(size=16), anchor="ma"
        )
    font = ImageFont.load_default(size=12)
    for index in range(count):
        row, column = divmod(index, columns)
        left, cell_top = gap + column * (cell_width + gap), top + row * (label + cell_height + gap)
        cell = Image.fromarray(pixels[index]).resize((cell_width, cell_height), resample)
        picture.paste(cell, (left, cell_top + label))
        draw.text(
            (left + cell_width / 2, cell_top + label - 2), titles[index], fill="black", font=font, anchor="md"
        )
    return picture


def spectrograms(
    values: np.ndarray, titles: Sequence[str], seconds: float, columns: int = 4, title: str = ""
) -> Figure:
    """Log-mel spectrograms `(examples, frames, mel_bands)`, one panel each: time (`seconds` across)
    against mel band, low bands at the bottom, louder brighter."""
    count = len(values)
    rows = max(1, int(np.ceil(count / columns)))
    figure = _figure(3.0 * columns, 2.3 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False)
    low, high = np.percentile(values, [1, 99.5]) if count else (0.0, 1.0)
    for index, axis in enumerate(axes.flat):
        if index >= count:
            axis.set_axis_off()
            continue
        axis.imshow(
            np.asarray(values[index]).T,
            origin="lower",
            aspect="auto",
            extent=(0.0, seconds, 0, values.shape[2]),
            vmin=low,
            vmax=high,
            cmap="magma",
        )
        axis.set_title(titles[index], fontsize=9)
        axis.set_xlabel("seconds", fontsize=8)
        axis.set_ylabel("mel band", fontsize=8)
        axis.tick_params(labelsize=7)
    if title:
        figure.suptitle(title)
    return figure


def gradient_flow(norms_by_epoch: dict[int, np.ndarray], title: str = "") -> Figure:
    """‖∂loss/∂h_t‖ against the time step t, one line per probed epoch, on a log scale.

    A curve that falls toward t = 0 is the vanishing gradient: early inputs barely move the loss.
    """
    figure = _figure(6.5, 4.0)
    axis = figure.subplots()
    for epoch, norms in sorted(norms_by_epoch.items()):
        label = "before training" if epoch == 0 else f"after epoch {epoch}"
        axis.plot(np.arange(len(norms)), norms, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("time step t")
    axis.set_ylabel("‖∂loss/∂h_t‖ (batch mean)")
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    axis.set_title(title or "gradient flow through the hidden states")
    return figure


def forecast(
    past: np.ndarray, targets: np.ndarray, predictions: np.ndarray, naive: np.ndarray, steps: int = 200
) -> Figure:
    """True against forecast values on the test split.

    Left: the next value of the first `steps` windows, true, forecast and naive (last value).
    Right, for forecasts of several steps: one window's past values and its whole forecast.
    """
    horizon = targets.shape[1]
    figure = _figure(11.0 if horizon > 1 else 7.0, 3.8)
    axes = figure.subplots(1, 2 if horizon > 1 else 1, squeeze=False)[0]
    shown = slice(0, min(steps, len(targets)))
    axis = axes[0]
    axis.plot(targets[shown, 0], label="true", color="black")
    axis.plot(predictions[shown, 0], label="model")
    axis.plot(naive[shown, 0], label="naive (last value)", linestyle=":")
    axis.set_xlabel("test window")
    axis.set_title("next value")
    axis.grid(alpha=0.3)
    axis.legend()
    if horizon > 1:
        axis = axes[1]
        window = len(past[0])
        ahead = np.arange(window, window + horizon)
        axis.plot(np.arange(window), past[0], label="past", color="gray")
        axis.plot(ahead, targets[0], label="true", color="black", marker="o")
        axis.plot(ahead, predictions[0], label="model", marker="o")
        axis.plot(ahead, naive[0], label="naive (last value)", linestyle=":")
        axis.set_xlabel("step")
        axis.set_title(f"first test window, {horizon} steps ahead")
        axis.grid(alpha=0.3)
        axis.legend()
    return figure
