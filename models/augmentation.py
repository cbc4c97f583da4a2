"""Train-only image augmentation inside a model: random flip, translation and contrast."""

from __future__ import annotations

from typing import Any, Literal

import keras

from models.spec import DataSpec

FlipMode = Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]


@keras.saving.register_keras_serializable(package="deeparch")
class ImageAugmentation(keras.layers.Layer):
    """Keras' random flip, translation (reflected edges) and contrast layers, applied only when
    called with `training=True`, as `fit` does; otherwise the images pass through unchanged.

    Keras' random layers augment whenever `training` is not given, and `model.export` serves the
    model called without it: wrapped here, an exported SavedModel serves what `predict` computes.
    Images are in [0, 1].
    """

    def __init__(
        self,
        flip: FlipMode = "none",
        translation: float = 0.0,
        contrast: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.flip, self.translation, self.contrast = flip, translation, contrast
        self.augmenters: list[keras.layers.Layer] = []
        if flip != "none":
            self.augmenters.append(keras.layers.RandomFlip(flip, name="random_flip"))
        if translation:
            self.augmenters.append(
                keras.layers.RandomTranslation(
                    translation, translation, fill_mode="reflect", name="random_translation"
                )
            )
        if contrast:
            self.augmenters.append(
                keras.layers.RandomContrast(contrast, value_range=(0.0, 1.0), name="random_contrast")
            )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        for augmenter in self.augmenters:
            augmenter.build(input_shape)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        for augmenter in self.augmenters:
            images = augmenter(images, training=True)
        return images

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "flip": self.flip,
            "translation": self.translation,
            "contrast": self.contrast,
        }


def augmented_images(
    inputs: keras.KerasTensor,
    spec: DataSpec,
    random_flip: FlipMode = "none",
    random_translation: float = 0.0,
    random_contrast: float = 0.0,
) -> keras.KerasTensor:
    """`inputs` behind an `ImageAugmentation` layer when any augmentation is asked for.

    Raises ValueError naming the arguments when they are asked for on inputs that are not images.
    """
    requested = {
        "random_flip": random_flip != "none",
        "random_translation": bool(random_translation),
        "random_contrast": bool(random_contrast),
    }
    if not any(requested.values()):
        return inputs
    if not spec.is_image:
        names = ", ".join(name for name, on in requested.items() if on)
        raise ValueError(
            f"{names} augment images (height, width, channels), not inputs of shape {spec.input_shape}; "
            "allowed here: random_flip=none, random_translation=0, random_contrast=0"
        )
    return ImageAugmentation(random_flip, random_translation, random_contrast, name="image_augmentation")(
        inputs
    )
