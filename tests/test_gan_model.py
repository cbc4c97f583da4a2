"""Specification of the GAN family: building, adversarial fit, sampling, export and reload."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.gan import GAN, build_gan
from models.registry import build
from models.spec import DataSpec

IMAGE = DataSpec((8, 8, 1), task="generation", num_classes=3)
SEQUENCE = DataSpec((40,), task="generation", num_classes=3)
SMALL = {"latent_dim": 8, "generator_units": (16, 8), "discriminator_units": (8, 16), "seed": 0}
# Each kind fits in `make test-slow` (make test's time budget): `make test` fits conditional images
# through the pipeline (gan-digits, test_gan_pipeline.py).
FITTED = [
    pytest.param((spec, conditional), id=name, marks=pytest.mark.slow)
    for spec, conditional, name in [
        (IMAGE, False, "image"),
        (IMAGE, True, "conditional_image"),
        (SEQUENCE, False, "sequence"),
        (SEQUENCE, True, "conditional_sequence"),
    ]
]


def _real_batch(spec: DataSpec, count: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    samples = rng.uniform(size=(count, *spec.input_shape)).astype("float32")
    return samples, rng.integers(0, spec.num_classes, size=count)


def _latent_and_labels(gan: GAN, count: int = 6) -> tuple[np.ndarray, np.ndarray | None]:
    latent = np.random.default_rng(1).normal(size=(count, gan.latent_dim)).astype("float32")
    labels = (np.arange(count) % gan.num_classes).astype("int32") if gan.conditional else None
    return latent, labels


@pytest.fixture(scope="module", params=FITTED)
def fitted(request) -> tuple[GAN, keras.callbacks.History]:
    """A small GAN of each kind after one epoch on random data, with validation."""
    spec, conditional = request.param
    gan = build_gan(spec, conditional=conditional, **SMALL)
    gan.compile()
    samples, labels = _real_batch(spec)
    history = gan.fit(samples, labels, batch_size=16, epochs=1, validation_data=(samples, labels), verbose=0)
    return gan, history


def test_registry_builds_a_gan():
    assert isinstance(build("gan", SEQUENCE, **SMALL), GAN)


def test_fit_logs_adversarial_losses_and_discriminator_probabilities(fitted):
    _, history = fitted
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(history.history[name]).all()
        assert np.isfinite(history.history[f"val_{name}"]).all()
    for name in ("d_real", "d_fake"):
        assert 0.0 <= history.history[name][-1] <= 1.0


def test_samples_have_the_data_shape(fitted):
    gan, _ = fitted
    samples = gan.sample(5, seed=2)
    assert tuple(samples.shape) == (5, *gan.generator.output_shape[1:])
    assert np.isfinite(keras.ops.convert_to_numpy(samples)).all()


def test_generated_images_lie_in_the_unit_interval():
    gan = build_gan(IMAGE, **SMALL)
    images = keras.ops.convert_to_numpy(gan.sample(8, seed=3))
    assert images.shape == (8, 8, 8, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_sequence_generator_has_a_linear_output():
    gan = build_gan(SEQUENCE, **SMALL)
    assert gan.generator.output_shape == (None, 40)
    assert gan.generator.get_layer("values").activation is keras.activations.linear


@pytest.mark.parametrize("shape", [(28, 28, 1), (10, 6, 3), (40, 1)])
def test_generator_matches_sizes_not_divisible_by_the_upsampling(shape):
    gan = build_gan(DataSpec(shape, task="generation"), **SMALL)
    assert gan.generator.output_shape == (None, *shape)
    assert gan.discriminator.output_shape == (None, 1)


def test_conditional_samples_depend_on_the_label():
    gan = build_gan(IMAGE, conditional=True, **SMALL)
    latent = np.zeros((2, gan.latent_dim), "float32")
    images = keras.ops.convert_to_numpy(gan.generate(latent, np.array([0, 1])))
    assert not np.allclose(images[0], images[1])


def test_conditional_image_discriminator_projects_the_label_and_classifies_the_picture():
    gan = build_gan(IMAGE, conditional=True, **SMALL)
    pictures = np.repeat(_real_batch(IMAGE, 1)[0], 3, axis=0)
    logits, class_logits = gan.discriminator([pictures, np.arange(3)])
    assert tuple(class_logits.shape) == (3, IMAGE.num_classes)
    # The real-vs-fake logit reads the label (projection); the class head reads only the picture.
    assert len(np.unique(keras.ops.convert_to_numpy(logits).round(6))) == 3
    np.testing.assert_allclose(class_logits[0], class_logits[1], atol=1e-6)


def test_conditional_generator_label_vectors_start_on_the_latent_scale():
    gan = build_gan(IMAGE, conditional=True, **SMALL)
    vectors = keras.ops.convert_to_numpy(gan.generator.get_layer("label_embedding").embeddings)
    assert 0.3 < vectors.std() < 3.0


def test_compile_without_arguments_uses_adam_at_the_build_time_rates():
    gan = build_gan(SEQUENCE, generator_learning_rate=1e-3, discriminator_learning_rate=5e-4)
    gan.compile()
    assert isinstance(gan.generator_optimizer, keras.optimizers.Adam)
    assert float(gan.generator_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(gan.discriminator_optimizer.learning_rate) == pytest.approx(5e-4)
    assert gan.discriminator_optimizer.beta_1 == pytest.approx(0.5)


def test_compiled_gan_has_its_optimizer_slots_and_traces_its_train_step_once(monkeypatch):
    gan = build_gan(IMAGE, conditional=True, **SMALL)
    gan.compile()
    assert gan.generator_optimizer.built and gan.discriminator_optimizer.built
    traced = []
    plain_step = GAN.train_step

    def counted_step(model, data):
        traced.append(model.name)
        return plain_step(model, data)

    monkeypatch.setattr(GAN, "train_step", counted_step)
    samples, labels = _real_batch(IMAGE)
    gan.fit(samples, labels, batch_size=16, epochs=2, verbose=0)
    assert len(traced) == 1


def test_conditional_gan_needs_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        build_gan(DataSpec((40,), task="generation"), conditional=True)


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_serving_export_reload_matches_generator_outputs(tmp_path, conditional):
    gan = build_gan(IMAGE, conditional=conditional, **SMALL)
    latent, labels = _latent_and_labels(gan)
    expected = keras.ops.convert_to_numpy(gan.generate(latent, labels))

    gan.serving_model().export(str(tmp_path / "serving"), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "serving"))

    inputs = {"latent": tf.constant(latent)}
    if conditional:
        inputs["labels"] = tf.constant(labels)
    served = reloaded.serve([inputs["latent"], inputs["labels"]] if conditional else inputs["latent"])
    (signature_output,) = reloaded.signatures["serving_default"](**inputs).values()
    # Served images are pixel values: 255 times the generator's [0, 1] samples.
    assert np.abs(served.numpy() - 255 * expected).max() < 255e-5
    assert np.abs(signature_output.numpy() - 255 * expected).max() < 255e-5


def test_keras_save_load_reproduces_generator_outputs_and_optimizer_state(tmp_path, fitted):
    gan, _ = fitted
    latent, labels = _latent_and_labels(gan)
    gan.save(tmp_path / "gan.keras")

    reloaded = keras.models.load_model(tmp_path / "gan.keras")

    assert isinstance(reloaded, GAN) and reloaded.conditional == gan.conditional
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded.generate(latent, labels)),
        keras.ops.convert_to_numpy(gan.generate(latent, labels)),
        atol=1e-6,
    )
    assert int(reloaded.generator_optimizer.iterations) == int(gan.generator_optimizer.iterations)
