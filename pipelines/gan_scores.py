"""Sample-quality scores for generative models, from features or class probabilities (numpy only).

`frechet_distance` is the formula behind FID, `classifier_score` the one behind the Inception
score; the caller chooses the feature extractor or classifier (e.g. a classifier trained on the
same dataset), so these functions stay pure and framework-free.

A score is only as good as its judge. `evaluator_skill` and `judge_failure` hold the floor a
judge must clear before its scores are reported: its skill on held-out real data, 1 - its error /
the error of the best constant guess (the commonest class; the mean image for an autoencoder),
must be at least MIN_SKILL (it makes at most half the errors of that guess); a classifier must
also beat chance beyond luck (a one-sided binomial test at MAX_CHANCE_P_VALUE, which matters on
small test splits); and its features must vary across real examples (a constant feature
extractor puts every sample set at distance 0).
"""

from __future__ import annotations

import numpy as np
import scipy.special
import scipy.stats

MIN_SKILL = 0.5
MAX_CHANCE_P_VALUE = 0.01
# Features whose largest standard deviation over real examples is below this share of their scale
# are constant: the extractor says the same of every example.
MIN_FEATURE_SPREAD = 1e-6


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two `(samples, features)` sets.

    d² = |μ_a - μ_b|² + Tr(Σ_a + Σ_b - 2 (Σ_a Σ_b)^½). The last trace is computed as
    Σ √λ over the eigenvalues λ of the symmetric Σ_a^½ Σ_b Σ_a^½, which has the same eigenvalues
    as Σ_a Σ_b: exact for the singular covariances that dead units or fewer samples than features
    give (where a general matrix square root warns and may turn complex), with no ε added.
    """
    features_a = _as_feature_matrix(features_a, "features_a")
    features_b = _as_feature_matrix(features_b, "features_b")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"features_a has {features_a.shape[1]} features and features_b "
            f"{features_b.shape[1]}; both need the same number"
        )
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    covariance_a = np.atleast_2d(np.cov(features_a, rowvar=False))
    covariance_b = np.atleast_2d(np.cov(features_b, rowvar=False))

    root_a = _psd_square_root(covariance_a)
    product = root_a @ covariance_b @ root_a
    # Round-off leaves eigenvalues of a positive semi-definite matrix a hair below zero.
    eigenvalues = np.clip(np.linalg.eigvalsh((product + product.T) / 2.0), 0.0, None)
    trace_of_root = float(np.sqrt(eigenvalues).sum())

    difference = mean_a - mean_b
    distance = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * trace_of_root
    # Round-off can leave a distance of identical sets a hair below zero.
    return float(max(distance, 0.0))


def _psd_square_root(covariance: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix (positive semi-definite, maybe singular)."""
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def classifier_score(probabilities: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) for `(samples, classes)` probabilities; from 1 up to classes.

    It is highest when each sample is confidently one class and the classes are evenly used.
    """
    probabilities = _as_probabilities(probabilities)
    marginal = probabilities.mean(axis=0, keepdims=True)
    # rel_entr treats 0 log 0 as 0, so one-hot predictions need no epsilon.
    divergences = scipy.special.rel_entr(probabilities, marginal).sum(axis=1)
    return float(np.exp(divergences.mean()))


def conditional_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose most probable class is the label they were generated for."""
    probabilities = _as_probabilities(probabilities)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != probabilities.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries for {probabilities.shape[0]} rows of "
            "probabilities; give one label per row"
        )
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def evaluator_skill(error: float, baseline_error: float) -> float:
    """1 - error / baseline_error: 0 for a judge no better than the best constant guess, 1 for a
    perfect one (negative when worse than the guess)."""
    if baseline_error <= 0:
        return 0.0  # nothing varies: no judge can do better than the constant guess
    return float(1.0 - error / baseline_error)


def chance_p_value(correct: int, total: int, chance: float) -> float:
    """Probability that a guesser right with probability `chance` is right `correct` or more times
    out of `total` (one-sided binomial test)."""
    return float(scipy.stats.binom.sf(correct - 1, total, chance)) if total else 1.0


def feature_spread(features: np.ndarray) -> float:
    """Largest standard deviation of a feature over the examples, relative to the features' scale
    (0 for an extractor that maps every example to the same vector)."""
    features = _as_feature_matrix(features, "features")
    scale = max(1.0, float(np.abs(features).max()))
    return float(features.std(axis=0).max() / scale)


def judge_failure(
    skill: float,
    features: np.ndarray,
    correct: int | None = None,
    total: int | None = None,
    chance: float | None = None,
) -> str | None:
    """Why a judge's scores must not be reported (a short tag value), or None when it can judge:
    `constant_features`, `evaluator_near_chance` (a classifier not beyond luck), `evaluator_below_floor`."""
    if feature_spread(features) < MIN_FEATURE_SPREAD:
        return "constant_features"
    if correct is not None and chance_p_value(correct, total or 0, chance or 0.0) > MAX_CHANCE_P_VALUE:
        return "evaluator_near_chance"
    if skill < MIN_SKILL:
        return "evaluator_below_floor"
    return None


def _as_feature_matrix(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 1:
        features = features[:, None]
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"{name} has shape {features.shape}; allowed: (samples, features) with 2+ samples")
    return features


def _as_probabilities(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError(f"probabilities has shape {probabilities.shape}; allowed: (samples, classes)")
    if (probabilities < 0).any():
        raise ValueError("probabilities has negative entries; allowed: values in [0, 1]")
    return probabilities
