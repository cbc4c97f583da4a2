"""How a generator is judged: by a network trained on the same data, and only when that network can judge.

Labelled data is judged by the evaluator classifier (a train run of `evaluate.evaluator`): the
Fréchet distance in the features its softmax head reads, the classifier score of its
probabilities, and the conditional accuracy of a class-conditional generator. Unlabelled data
(a folder of pictures without class sub-folders) is judged by a convolutional autoencoder trained
here on the train split (`models.autoencoder`): the Fréchet distance of its features (its code and
the spread of its filters' responses, each in units of its spread over real pictures). An autoencoder
rather than a self-supervised classifier (predicting rotations, say) because it learns on any
folder, textures and rotation-symmetric logos included, and its own quality has a direct floor:
the share of the pixel variance it draws back on held-out pictures.

Before any score is reported, the judge's own test figures are checked against the floor of
`gan_scores.judge_failure`; below it, the scores are withheld: not computed, not logged, the run
tagged `scores_withheld` and one line printed saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np

from pipelines import gan_scores
from pipelines.data import PreparedDataset, as_tf_dataset
from pipelines.serving import generate, generator_inputs

FEATURE_LAYER = "probabilities"  # the evaluator's head: its input is the feature vector
# Real examples a generator's samples are compared with (features of each are held in memory).
GAN_REAL_EXAMPLES = 10_000
# The autoencoder judge of unlabelled data: at most this many epochs, stopped once its validation
# error has not improved for AUTOENCODER_PATIENCE of them (its best weights kept).
AUTOENCODER_EPOCHS = 30
AUTOENCODER_PATIENCE = 3
AUTOENCODER_BATCH_SIZE = 64
AUTOENCODER_MIN_STEPS = 20  # per epoch
AUTOENCODER_LEARNING_RATE = 2e-3
INTERPOLATION_ROWS, INTERPOLATION_STEPS = 4, 8


def unlabelled(dataset: PreparedDataset) -> bool:
    """True for data without classes to learn (a folder of pictures without class sub-folders)."""
    return dataset.spec.task == "classification" and (dataset.spec.num_classes or 0) < 2


@dataclass
class Judge:
    """A network that scores generated samples, with its own test figures and whether it can judge."""

    kind: str  # "classifier" or "autoencoder"
    embed: keras.Model  # inputs -> features (and class probabilities for a classifier)
    metrics: dict[str, float]  # its own test figures, logged whether or not it can judge
    failure: str | None = None  # why its scores are withheld (the `scores_withheld` tag), or None
    reason: str = ""  # the same in one sentence
    test_features: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    test_probabilities: np.ndarray | None = None
    # Features are divided by this (the autoencoder's: each one's spread over real test pictures).
    scale: np.ndarray | float = 1.0

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Features (and class probabilities, for a classifier) of a batch of examples."""
        outputs = self.embed.predict(x, batch_size=256, verbose=0)
        if self.kind == "classifier":
            return np.asarray(outputs[0]) / self.scale, np.asarray(outputs[1])
        return np.asarray(outputs) / self.scale, None


def classifier_judge(classifier: keras.Model, dataset: PreparedDataset) -> Judge:
    """The evaluator classifier, with its accuracy on the test split beside the commonest class's share."""
    embed = keras.Model(classifier.inputs, [classifier.get_layer(FEATURE_LAYER).input, classifier.output])
    test = dataset.arrays("test", GAN_REAL_EXAMPLES)
    judge = Judge("classifier", embed, {})
    features, probabilities = judge.features(test.x)
    labels = test.y.astype(np.int64).reshape(-1)
    correct, total = int(np.sum(probabilities.argmax(axis=1) == labels)), len(labels)
    chance = float(np.bincount(labels).max() / total)
    accuracy = correct / total
    skill = gan_scores.evaluator_skill(1.0 - accuracy, 1.0 - chance)
    judge.metrics = {
        "evaluator_test_accuracy": accuracy,
        "evaluator_chance_accuracy": chance,
        "evaluator_skill": skill,
    }
    judge.test_features, judge.test_probabilities = features, probabilities
    judge.failure = gan_scores.judge_failure(skill, features, correct, total, chance)
    floor = chance + gan_scores.MIN_SKILL * (1.0 - chance)
    judge.reason = {
        "constant_features": (
            "the evaluator classifier gives every test example the same features, so every sample "
            "set would sit at Fréchet distance 0"
        ),
        "evaluator_near_chance": (
            f"the evaluator classifier is right on {accuracy:.1%} of {total} test examples, no better "
            f"than chance ({chance:.1%}, the commonest class) beyond luck"
        ),
        "evaluator_below_floor": (
            f"the evaluator classifier is right on {accuracy:.1%} of {total} test examples; judging a "
            f"generator needs {floor:.1%} (at most half the errors of always guessing the commonest class, "
            f"{chance:.1%})"
        ),
    }.get(judge.failure or "", "")
    return judge


def autoencoder_judge(dataset: PreparedDataset, seed: int) -> Judge:
    """An autoencoder trained now on the train split (early stopping on the validation split),
    with its test error beside that of drawing every picture as the train split's mean picture."""
    from models.autoencoder import build_autoencoder, encoder

    keras.utils.set_random_seed(seed)
    model = build_autoencoder(dataset.spec)
    model.compile(optimizer=keras.optimizers.Adam(AUTOENCODER_LEARNING_RATE), loss="mse", jit_compile=False)

    def images_to_themselves(split: str, shuffle: bool = False):
        batches = as_tf_dataset(dataset.splits[split], AUTOENCODER_BATCH_SIZE, shuffle=shuffle, seed=seed)
        return batches.map(lambda x, _: (x, x))

    # A small folder's epoch is a few steps: it repeats, so that each epoch has enough to learn.
    steps = max(AUTOENCODER_MIN_STEPS, math.ceil(len(dataset.splits["train"]) / AUTOENCODER_BATCH_SIZE))
    model.fit(
        images_to_themselves("train", shuffle=True).repeat(),
        steps_per_epoch=steps,
        validation_data=images_to_themselves("validation"),
        epochs=AUTOENCODER_EPOCHS,
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        callbacks=[
            keras.callbacks.EarlyStopping(patience=AUTOENCODER_PATIENCE, restore_best_weights=True, verbose=0)
        ],
        verbose=0,
    )
    test = dataset.arrays("test", GAN_REAL_EXAMPLES).x
    mean_picture = dataset.arrays("train", GAN_REAL_EXAMPLES).x.mean(axis=0, keepdims=True)
    drawn = np.asarray(model.predict(test, batch_size=256, verbose=0))
    error = float(np.mean((drawn - test) ** 2))
    baseline = float(np.mean((mean_picture - test) ** 2))
    skill = gan_scores.evaluator_skill(error, baseline)
    judge = Judge(
        "autoencoder",
        encoder(model),
        {"evaluator_test_mse": error, "evaluator_mean_picture_mse": baseline, "evaluator_skill": skill},
    )
    raw_features, _ = judge.features(test)
    judge.failure = gan_scores.judge_failure(skill, raw_features)
    # The code's few large numbers would drown the filter spreads (which see blur): each feature
    # counts in units of its spread over the real test pictures.
    spread = raw_features.std(axis=0)
    judge.scale = np.where(spread > 0, spread, 1.0)
    judge.test_features = raw_features / judge.scale
    judge.reason = {
        "constant_features": (
            "the autoencoder judge gives every test picture the same code, so every sample set would "
            "sit at Fréchet distance 0"
        ),
        "evaluator_below_floor": (
            f"the autoencoder judge draws back {skill:.1%} of the test pictures' pixel variance; judging a "
            f"generator needs {gan_scores.MIN_SKILL:.0%}"
        ),
    }.get(judge.failure or "", "")
    return judge


def generation_scores(
    judge: Judge,
    real_train: np.ndarray,
    generated: np.ndarray,
    generated_labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Generated samples scored by a judge that can judge, beside the same scores of real data.

    `frechet_distance` (test vs generated features) sits beside `real_frechet_distance` (test vs
    train: the floor) and their ratio; a classifier adds `classifier_score` (the Inception score
    formula) beside `real_classifier_score` (the ceiling is the number of classes), and
    `conditional_accuracy` when labels say what each sample was conditioned on.
    """
    if judge.failure is not None:
        raise ValueError(f"this judge cannot score samples: {judge.reason}")
    train_features, _ = judge.features(real_train)
    generated_features, generated_probabilities = judge.features(generated)
    metrics = {
        "frechet_distance": gan_scores.frechet_distance(judge.test_features, generated_features),
        "real_frechet_distance": gan_scores.frechet_distance(judge.test_features, train_features),
    }
    metrics["frechet_ratio"] = metrics["frechet_distance"] / max(metrics["real_frechet_distance"], 1e-12)
    if judge.kind == "classifier":
        metrics["classifier_score"] = gan_scores.classifier_score(generated_probabilities)
        metrics["real_classifier_score"] = gan_scores.classifier_score(judge.test_probabilities)
        if generated_labels is not None:
            metrics["conditional_accuracy"] = gan_scores.conditional_accuracy(
                generated_probabilities, generated_labels
            )
    return metrics


def generated_for_scores(
    generator: keras.Model, count: int, seed: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`count` samples in the data's model range, and the labels they were conditioned on (or None)."""
    inputs = generator_inputs(generator, count, seed, num_classes)
    return generate(generator, inputs), inputs.get("labels")


def interpolation_grid(generator: keras.Model, class_names: list[str], seed: int, title: str):
    """Samples along straight lines between pairs of latent vectors, a row per pair (a class
    per row when conditional): a generator that learnt a smooth map changes them gradually."""
    from pipelines import plots

    rng = np.random.default_rng(seed)
    latent_size = next(t.shape[-1] for t in generator.inputs if t.name == "latent")
    starts = rng.standard_normal((INTERPOLATION_ROWS, 1, latent_size))
    ends = rng.standard_normal((INTERPOLATION_ROWS, 1, latent_size))
    weights = np.linspace(0.0, 1.0, INTERPOLATION_STEPS).reshape(1, -1, 1)
    latent = ((1 - weights) * starts + weights * ends).reshape(-1, latent_size).astype(np.float32)
    inputs = {"latent": latent}
    titles = [""] * len(latent)
    if len(generator.inputs) > 1:
        classes = max(1, len(class_names))
        labels = np.repeat(np.arange(INTERPOLATION_ROWS) % classes, INTERPOLATION_STEPS).astype(np.int32)
        inputs["labels"] = labels
        titles = [class_names[label] if class_names else str(label) for label in labels]
    return plots.sample_grid(generate(generator, inputs), titles, columns=INTERPOLATION_STEPS, title=title)
