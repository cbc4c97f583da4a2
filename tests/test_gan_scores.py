"""Specification of the GAN sample-quality scores on data whose answer is known in closed form."""

import numpy as np
import pytest

from pipelines.gan_scores import classifier_score, conditional_accuracy, frechet_distance


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(200, 8))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_two_samples_of_one_gaussian_is_small():
    rng = np.random.default_rng(1)
    assert frechet_distance(rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4))) < 0.05


def test_frechet_distance_of_shifted_gaussians_is_the_squared_mean_shift():
    # With equal covariances the trace terms cancel and d² = |μ_a - μ_b|².
    features = np.random.default_rng(2).normal(size=(500, 3))
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(features, features + shift) == pytest.approx(shift @ shift, rel=1e-6)


def test_frechet_distance_handles_singular_covariances():
    # Fewer samples than features make both covariances singular.
    rng = np.random.default_rng(3)
    distance = frechet_distance(rng.normal(size=(5, 20)), rng.normal(size=(5, 20)))
    assert np.isfinite(distance) and distance >= 0.0


def test_frechet_distance_rejects_mismatched_feature_counts():
    with pytest.raises(ValueError, match="features_b"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))


def test_classifier_score_reaches_class_count_for_confident_evenly_spread_predictions():
    probabilities = np.eye(5)[np.arange(50) % 5]
    assert classifier_score(probabilities) == pytest.approx(5.0)


def test_classifier_score_is_one_for_identical_predictions():
    probabilities = np.tile([0.7, 0.2, 0.1], (30, 1))
    assert classifier_score(probabilities) == pytest.approx(1.0)


def test_conditional_accuracy_counts_argmax_matching_the_labels():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert conditional_accuracy(probabilities, np.array([0, 1, 1, 1])) == pytest.approx(0.75)
