"""A convolutional autoencoder: images squeezed through a small dense `code` and drawn back.

The pipeline trains one on an unlabelled folder to judge a GAN's samples: the code is what the
network had to keep of each picture of that folder to draw it again, so the Fréchet distance
between the codes of real and generated pictures compares what varies among those pictures,
where no class labels exist to train a classifier on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from models.spec import DataSpec

CODE_LAYER = "code"


def build_autoencoder(spec: DataSpec, filters: Sequence[int] = (32, 64), code_size: int = 64) -> keras.Model:
    """Stride-2 Conv2D blocks down to a dense `code` of `code_size`, transposed convolutions back
    up to sigmoid pixels in [0, 1] of the input's shape (`(height, width, channels)` images)."""
    if not spec.is_image:
        raise ValueError(f"build_autoencoder reads images; got input shape {spec.input_shape}")
    if not filters:
        raise ValueError("filters is empty; give at least one block")
    height, width, channels = spec.input_shape
    scale = 2 ** len(filters)
    small_height, small_width = math.ceil(height / scale), math.ceil(width / scale)
    images = keras.Input(shape=spec.input_shape, name="images")
    # A first block at full resolution: its filters see single-pixel edges (`encoder` reads them).
    x = keras.layers.Conv2D(filters[0], 3, padding="same", name="encode_pixels")(images)
    x = keras.layers.LeakyReLU(0.2, name="encode_pixels_leaky_relu")(x)
    for index, size in enumerate(filters):
        x = keras.layers.Conv2D(size, 3, strides=2, padding="same", name=f"encode_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"encode_{index}_leaky_relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    code = keras.layers.Dense(code_size, name=CODE_LAYER)(x)
    x = keras.layers.Dense(small_height * small_width * filters[-1], name="decode_seed")(code)
    x = keras.layers.LeakyReLU(0.2, name="decode_seed_leaky_relu")(x)
    # A size that is not a multiple of `scale` is padded on the way down, cropped on the way up.
    x = keras.layers.Reshape((small_height, small_width, filters[-1]), name="decode_map")(x)
    for index, size in enumerate(reversed(filters)):
        x = keras.layers.Conv2DTranspose(size, 3, strides=2, padding="same", name=f"decode_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"decode_{index}_leaky_relu")(x)
    excess_height, excess_width = small_height * scale - height, small_width * scale - width
    if excess_height or excess_width:
        x = keras.layers.Cropping2D(((0, excess_height), (0, excess_width)), name="crop")(x)
    drawn = keras.layers.Conv2D(
        channels, 3, padding="same", activation="sigmoid", dtype="float32", name="drawn"
    )(x)
    return keras.Model(images, drawn, name="autoencoder")


def encoder(autoencoder: keras.Model) -> keras.Model:
    """Images to their features: the code, and how much each encoder filter's response varies
    across the picture (its spatial standard deviation).

    The code says what a picture shows; the responses' spread says how sharp its edges and
    textures are (the texture statistics of style transfer), which a code of a few numbers drops:
    blurred copies land near the originals' codes, not near their spreads.
    """
    blocks = [
        layer
        for layer in autoencoder.layers
        if layer.name.startswith("encode_") and layer.name.endswith("_relu")
    ]
    spreads = [
        keras.layers.Lambda(_spatial_spread, name=f"{layer.name}_spread")(layer.output) for layer in blocks
    ]
    code = autoencoder.get_layer(CODE_LAYER).output
    features = keras.layers.Concatenate(name="features")([code, *spreads])
    return keras.Model(autoencoder.inputs, features, name="encoder")


def _spatial_spread(maps):
    """Standard deviation of each channel of `(batch, height, width, channels)` maps over its pixels."""
    return keras.ops.std(maps, axis=(1, 2))
