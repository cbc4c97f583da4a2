"""Generative adversarial network: a generator G(z) and a discriminator D(x) trained as rivals.

D learns to tell real samples from G's; G learns to make D call its samples real (the
non-saturating loss -log D(G(z))). `GAN` overrides `train_step` like keras-io's DCGAN example, so
`fit`, callbacks and the progress bar work unchanged and log `d_loss`, `g_loss`, `d_real` and
`d_fake` (D's mean probability of "real" on real and on generated samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

from models.spec import DataSpec


@keras.saving.register_keras_serializable(package="deeparch")
class GAN(keras.Model):
    """A generator and a discriminator with the adversarial `train_step` that fits them.

    `fit` takes `(real_samples, labels)` batches; labels condition both networks when
    `num_classes` is set and are ignored otherwise. Calling the model maps latent vectors (and
    labels, when conditional) to generated samples.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        num_classes: int | None = None,
        label_smoothing: float = 0.1,
        generator_learning_rate: float = 2e-4,
        discriminator_learning_rate: float = 2e-4,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing is {label_smoothing}; allowed: 0 <= value < 1")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.generator_learning_rate = generator_learning_rate
        self.discriminator_learning_rate = discriminator_learning_rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        self.class_cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        # Both networks are built functional models, so the GAN has all its weights already.
        self.built = True

    @property
    def conditional(self) -> bool:
        """True when both networks take class labels."""
        return self.num_classes is not None

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The loss trackers, listed here so that Keras resets them every epoch."""
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def compile(
        self,
        generator_optimizer: keras.optimizers.Optimizer | None = None,
        discriminator_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs,
    ) -> None:
        """Set one optimizer per network; by default Adam(β₁=0.5) at the build-time rates."""
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer or keras.optimizers.Adam(
            self.generator_learning_rate, beta_1=0.5
        )
        self.discriminator_optimizer = discriminator_optimizer or keras.optimizers.Adam(
            self.discriminator_learning_rate, beta_1=0.5
        )
        # Their slots now, not in the first traced train step: TensorFlow traces a step that
        # created variables a second time (and `load_model` needs them to restore their state).
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self) -> dict:
        """Both optimizers, so that `load_model` recompiles the GAN and restores their state."""
        if not self.compiled:
            return {}
        return {
            "generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
            "discriminator_optimizer": keras.saving.serialize_keras_object(self.discriminator_optimizer),
        }

    def compile_from_config(self, config: dict) -> None:
        """Recompile from `get_compile_config` (which creates the optimizer slots the weights fill)."""
        self.compile(
            generator_optimizer=keras.saving.deserialize_keras_object(config["generator_optimizer"]),
            discriminator_optimizer=keras.saving.deserialize_keras_object(config["discriminator_optimizer"]),
        )

    def call(self, inputs, training: bool = False):
        """Generated samples for `latent` or `[latent, labels]`."""
        return self.generator(inputs, training=training)

    def generate(self, latent, labels=None):
        """Generated samples for a batch of latent vectors (and class labels when conditional)."""
        return self.generator(self._generator_inputs(latent, labels), training=False)

    def sample(self, count: int, seed: int | None = None, labels=None):
        """`count` samples from standard normal latents drawn with `seed`.

        Conditional models cycle through the classes when `labels` is not given.
        """
        latent = keras.random.normal((count, self.latent_dim), seed=seed)
        if self.conditional and labels is None:
            labels = ops.arange(count, dtype="int32") % self.num_classes
        return self.generate(latent, labels)

    @property
    def generates_images(self) -> bool:
        """True when the generator draws `(height, width, channels)` images."""
        return len(self.generator.outputs[0].shape) == 4

    def serving_model(self) -> keras.Model:
        """A functional model from `latent` (and int32 `labels`) to samples, ready to export.

        Images come out as pixel values in [0, 255] (a last layer named `pixels`), as image files
        and image libraries hold them; other samples as the generator draws them.
        """
        latent = keras.Input(shape=(self.latent_dim,), name="latent")
        inputs = latent
        if self.conditional:
            inputs = [latent, keras.Input(shape=(), dtype="int32", name="labels")]
        samples = self.generator(inputs)
        if self.generates_images:
            samples = keras.layers.Rescaling(255.0, dtype="float32", name="pixels")(samples)
        return keras.Model(inputs, samples, name=f"{self.name}_serving")

    def train_step(self, data):
        """One discriminator update on real and generated samples, then one generator update."""
        real_samples, labels = self._unpack(data)
        batch_size = ops.shape(real_samples)[0]

        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake_samples = self.generator(self._generator_inputs(latent, labels), training=True)
            real_logits, real_classes = self._discriminate(real_samples, labels, training=True)
            fake_logits, _ = self._discriminate(fake_samples, labels, training=True)
            d_loss = self._discriminator_loss(real_logits, fake_logits)
            d_loss += self._class_loss(labels, real_classes)
        weights = self.discriminator.trainable_weights
        gradients = tape.gradient(d_loss, weights)
        self.discriminator_optimizer.apply_gradients(zip(gradients, weights, strict=True))

        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            generated = self.generator(self._generator_inputs(latent, labels), training=True)
            generated_logits, generated_classes = self._discriminate(generated, labels, training=True)
            g_loss = self._generator_loss(generated_logits) + self._class_loss(labels, generated_classes)
        weights = self.generator.trainable_weights
        gradients = tape.gradient(g_loss, weights)
        self.generator_optimizer.apply_gradients(zip(gradients, weights, strict=True))

        return self._track(d_loss, g_loss, real_logits, fake_logits)

    def test_step(self, data):
        """The same losses and probabilities as `train_step`, without updating either network."""
        real_samples, labels = self._unpack(data)
        batch_size = ops.shape(real_samples)[0]
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        fake_samples = self.generator(self._generator_inputs(latent, labels), training=False)
        real_logits, real_classes = self._discriminate(real_samples, labels, training=False)
        fake_logits, fake_classes = self._discriminate(fake_samples, labels, training=False)
        d_loss = self._discriminator_loss(real_logits, fake_logits) + self._class_loss(labels, real_classes)
        g_loss = self._generator_loss(fake_logits) + self._class_loss(labels, fake_classes)
        return self._track(d_loss, g_loss, real_logits, fake_logits)

    def get_config(self) -> dict:
        """Both networks and the training settings, enough for `keras.models.load_model`."""
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
            "generator_learning_rate": self.generator_learning_rate,
            "discriminator_learning_rate": self.discriminator_learning_rate,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> GAN:
        """Rebuild the GAN, deserializing its two networks first."""
        config = dict(config)
        for network in ("generator", "discriminator"):
            config[network] = keras.saving.deserialize_keras_object(config[network])
        return cls(**config)

    def _unpack(self, data):
        """Real samples as float32 and labels as an int32 vector (None when unconditional)."""
        real_samples, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        real_samples = ops.cast(real_samples, "float32")
        if not self.conditional:
            return real_samples, None
        if labels is None:
            raise ValueError("a conditional GAN needs (samples, labels) batches; got no labels")
        if len(labels.shape) == 2 and labels.shape[-1] not in (None, 1):
            labels = ops.argmax(labels, axis=-1)  # one-hot labels
        return real_samples, ops.reshape(ops.cast(labels, "int32"), (-1,))

    def _generator_inputs(self, latent, labels):
        latent = ops.convert_to_tensor(latent, "float32")
        if not self.conditional:
            return latent
        if labels is None:
            raise ValueError("a conditional GAN needs labels to generate; got labels=None")
        return [latent, ops.reshape(ops.cast(labels, "int32"), (-1,))]

    def _discriminate(self, samples, labels, training: bool):
        """The real-vs-fake logits, and the class logits of a discriminator with a class head (else None)."""
        inputs = [samples, labels] if self.conditional else samples
        outputs = self.discriminator(inputs, training=training)
        if isinstance(outputs, (list, tuple)):
            return outputs[0], outputs[1]
        return outputs, None

    def _class_loss(self, labels, class_logits):
        # The auxiliary classifier (AC-GAN): D's head learns the classes of real samples, and G is
        # rewarded when that head reads its samples as the label they were drawn for.
        if class_logits is None:
            return 0.0
        return self.class_cross_entropy(labels, class_logits)

    def _discriminator_loss(self, real_logits, fake_logits):
        # One-sided label smoothing: real targets 1 - smoothing, fake targets stay 0.
        real_targets = ops.full_like(real_logits, 1.0 - self.label_smoothing)
        return self.cross_entropy(real_targets, real_logits) + self.cross_entropy(
            ops.zeros_like(fake_logits), fake_logits
        )

    def _generator_loss(self, fake_logits):
        # Non-saturating loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        return self.cross_entropy(ops.ones_like(fake_logits), fake_logits)

    def _track(self, d_loss, g_loss, real_logits, fake_logits) -> dict:
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        return {metric.name: metric.result() for metric in self.metrics}


def build_gan(
    spec: DataSpec,
    latent_dim: int = 32,
    generator_units: Sequence[int] = (128, 64),
    discriminator_units: Sequence[int] = (64, 128),
    conditional: bool | str = False,
    generator_learning_rate: float = 2e-4,
    discriminator_learning_rate: float = 2e-4,
    label_smoothing: float = 0.1,
    embedding_dim: int = 16,
    batch_norm: bool = True,
    dropout: float = 0.2,
    seed: int | None = None,
) -> GAN:
    """A DCGAN for `(height, width, channels)` images, a dense GAN for vectors and sequences.

    On images each entry of `generator_units` is a stride-2 Conv2DTranspose block (filters) that
    doubles the resolution from a small seed, and each entry of `discriminator_units` a stride-2
    Conv2D block; elsewhere they are dense layer widths. Generated images are sigmoid outputs in
    [0, 1] (the pipeline scales images to that range); other data gets a linear output.
    `conditional=True` feeds learned class embeddings of `spec.num_classes` labels to both nets;
    `"auto"` does when the data has two classes or more (a single class conditions nothing).
    """
    if latent_dim < 1:
        raise ValueError(f"latent_dim is {latent_dim}; allowed: a positive integer")
    if conditional not in (True, False, "auto"):
        raise ValueError(f"conditional is {conditional!r}; allowed: true, false or auto")
    if conditional == "auto":
        conditional = (spec.num_classes or 0) >= 2
    num_classes = None
    if conditional:
        if not spec.num_classes:
            raise ValueError("conditional=True needs a DataSpec with num_classes; it has none")
        num_classes = spec.num_classes
    if spec.is_image:
        generator = _image_generator(
            spec, latent_dim, generator_units, num_classes, embedding_dim, batch_norm
        )
        discriminator = _image_discriminator(spec, discriminator_units, num_classes, dropout)
    else:
        generator = _dense_generator(
            spec, latent_dim, generator_units, num_classes, embedding_dim, batch_norm
        )
        discriminator = _dense_discriminator(spec, discriminator_units, num_classes, embedding_dim, dropout)
    return GAN(
        generator,
        discriminator,
        latent_dim=latent_dim,
        num_classes=num_classes,
        label_smoothing=label_smoothing,
        generator_learning_rate=generator_learning_rate,
        discriminator_learning_rate=discriminator_learning_rate,
        seed=seed,
        name="gan",
    )


def _generator_input(
    latent_dim: int, num_classes: int | None, embedding_dim: int, embeddings_initializer="uniform"
):
    """The latent input, and the label input whose embedding is appended to it when conditional."""
    latent = keras.Input(shape=(latent_dim,), name="latent")
    if num_classes is None:
        return latent, latent
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    embedded = keras.layers.Embedding(
        num_classes, embedding_dim, embeddings_initializer=embeddings_initializer, name="label_embedding"
    )(labels)
    features = keras.layers.Concatenate(name="latent_and_label")([latent, embedded])
    return [latent, labels], features


def _dense_block(x, width: int, batch_norm: bool, name: str):
    x = keras.layers.Dense(width, use_bias=not batch_norm, name=f"{name}_dense")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_batch_norm")(x)
    return keras.layers.LeakyReLU(0.2, name=f"{name}_leaky_relu")(x)


def _image_generator(
    spec: DataSpec,
    latent_dim: int,
    units: Sequence[int],
    num_classes: int | None,
    embedding_dim: int,
    batch_norm: bool,
) -> keras.Model:
    """Dense seed, stride-2 transposed convolutions, crop to the image size, sigmoid pixels."""
    height, width, channels = spec.input_shape
    if not units:
        raise ValueError("generator_units is empty; give at least one block for images")
    scale = 2 ** len(units)
    # Sizes that are not multiples of `scale` start from a rounded-up seed and crop the excess.
    seed_height, seed_width = math.ceil(height / scale), math.ceil(width / scale)
    # Class vectors start on the latent's scale, N(0, 1), not Keras' ±0.05: a label a hundred
    # times weaker than the noise beside it is a signal the seed layer learns to read only slowly.
    inputs, x = _generator_input(
        latent_dim, num_classes, embedding_dim, keras.initializers.RandomNormal(stddev=1.0)
    )
    x = _dense_block(x, seed_height * seed_width * units[0], batch_norm, "seed")
    x = keras.layers.Reshape((seed_height, seed_width, units[0]), name="seed_map")(x)
    for index, filters in enumerate(units):
        x = keras.layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", use_bias=not batch_norm, name=f"upsample_{index}"
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
    excess_height, excess_width = seed_height * scale - height, seed_width * scale - width
    if excess_height or excess_width:
        x = keras.layers.Cropping2D(
            (
                (excess_height // 2, excess_height - excess_height // 2),
                (excess_width // 2, excess_width - excess_width // 2),
            ),
            name="crop",
        )(x)
    samples = keras.layers.Conv2D(
        channels, 3, padding="same", activation="sigmoid", dtype="float32", name="samples"
    )(x)
    return keras.Model(inputs, samples, name="generator")


def _image_discriminator(
    spec: DataSpec, units: Sequence[int], num_classes: int | None, dropout: float
) -> keras.Model:
    """Stride-2 convolutions with leaky ReLU, then one real-vs-fake logit; when conditional, plus
    the projection of the class's learned vector on the pooled features (Miyato & Koyama, 2018)."""
    samples = keras.Input(shape=spec.input_shape, name="samples")
    x = samples
    for index, filters in enumerate(units):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
    features = x
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    if num_classes is None:
        return keras.Model(samples, logit, name="discriminator")
    # The label enters as an inner product with what the convolutions found anywhere in the picture,
    # not as an extra input channel: the conditional term of the logit is then a class's own
    # direction in feature space, which drives the generator to draw that class (a label channel
    # let D judge realism alone and left samples nearly unconditioned: 10 % conditional accuracy).
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    pooled = keras.layers.GlobalAveragePooling2D(name="pooled")(features)
    class_vector = keras.layers.Embedding(num_classes, features.shape[-1], name="label_embedding")(labels)
    projection = keras.layers.Dot(axes=1, dtype="float32", name="projection")([pooled, class_vector])
    logit = keras.layers.Add(dtype="float32", name="conditional_logit")([logit, projection])
    class_logits = keras.layers.Dense(num_classes, dtype="float32", name="class_logits")(pooled)
    return keras.Model([samples, labels], [logit, class_logits], name="discriminator")


def _dense_generator(
    spec: DataSpec,
    latent_dim: int,
    units: Sequence[int],
    num_classes: int | None,
    embedding_dim: int,
    batch_norm: bool,
) -> keras.Model:
    """Dense layers from the latent vector to a linear output of the data's shape."""
    inputs, x = _generator_input(latent_dim, num_classes, embedding_dim)
    for index, width in enumerate(units):
        x = _dense_block(x, width, batch_norm, f"block_{index}")
    x = keras.layers.Dense(math.prod(spec.input_shape), dtype="float32", name="values")(x)
    samples = keras.layers.Reshape(spec.input_shape, dtype="float32", name="samples")(x)
    return keras.Model(inputs, samples, name="generator")


def _dense_discriminator(
    spec: DataSpec,
    units: Sequence[int],
    num_classes: int | None,
    embedding_dim: int,
    dropout: float,
) -> keras.Model:
    """Dense layers with leaky ReLU on the flattened sample, then one real-vs-fake logit."""
    samples = keras.Input(shape=spec.input_shape, name="samples")
    x = keras.layers.Flatten(name="flatten")(samples)
    inputs = samples
    if num_classes is not None:
        labels = keras.Input(shape=(), dtype="int32", name="labels")
        embedded = keras.layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
        x = keras.layers.Concatenate(name="samples_and_label")([x, embedded])
        inputs = [samples, labels]
    for index, width in enumerate(units):
        x = keras.layers.Dense(width, name=f"dense_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, logit, name="discriminator")
