"""The MLflow model registry: register an exported model, and promote a version to `champion`.

A version is promoted only when its evaluation passes the experiment's thresholds and is not
worse than the current champion's evaluation on the same data (same dataset digest).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from pipelines import tracking
from pipelines.config import ConfigError

CHAMPION = "champion"
# The metric that ranks versions, by task, and whether higher is better.
RANKING_METRICS = (("test_accuracy", True), ("test_mse", False), ("frechet_ratio", False))


class PromotionRefused(RuntimeError):
    """A version that may not become the champion, with the reason."""


@dataclass
class Evaluation:
    """A registered version's evaluation: metric, value, and the data it was measured on."""

    version: str
    metric: str
    value: float
    higher_is_better: bool
    dataset_digest: str
    evaluate_run_id: str

    def better_or_equal(self, other: Evaluation) -> bool:
        """Whether this evaluation is at least as good as `other` on the same metric."""
        return self.value >= other.value if self.higher_is_better else self.value <= other.value


def register(name: str, model_uri: str, tags: dict[str, str]) -> str:
    """Register the logged model at `model_uri` as a new version of `name`; return the version."""
    version = mlflow.register_model(model_uri, name, tags=tags)
    return str(version.version)


def evaluation_of(name: str, version: str) -> Evaluation:
    """The newest finished evaluation of the train run behind a registered version."""
    client = mlflow.MlflowClient()
    try:
        model_version = client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException:
        raise ConfigError(f"registered model {name!r} has no version {version!r}") from None
    train_run_id = model_version.tags.get("train_run_id")
    if not train_run_id:
        raise ConfigError(f"{name!r} version {version} was not registered by deeparch (no train_run_id tag)")
    train_run = tracking.get_run(train_run_id)
    evaluation = tracking.newest_run(
        train_run.info.experiment_id, {"stage": "evaluate", "train_run_id": train_run_id}
    )
    if evaluation is None:
        raise PromotionRefused(
            f"{name!r} version {version} has no finished evaluation; "
            f"run `deeparch evaluate --run {train_run_id}`"
        )
    metrics = evaluation.data.metrics
    for metric, higher_is_better in RANKING_METRICS:
        if metric in metrics:
            return Evaluation(
                version,
                metric,
                metrics[metric],
                higher_is_better,
                model_version.tags.get("dataset_digest", ""),
                evaluation.info.run_id,
            )
    raise PromotionRefused(
        f"{name!r} version {version}'s evaluation has none of {[m for m, _ in RANKING_METRICS]}"
    )


def promote(name: str, version: str) -> str:
    """Move the `champion` alias to `version` if it passes; return what was decided, or raise."""
    candidate = evaluation_of(name, version)
    config = tracking.run_config(
        tracking.get_run(mlflow.MlflowClient().get_model_version(name, version).tags["train_run_id"])
    )
    threshold = config.evaluate.min_accuracy
    if threshold is not None and candidate.metric == "test_accuracy" and candidate.value < threshold:
        raise PromotionRefused(
            f"{name!r} version {version} has test_accuracy {candidate.value:.4f}, below the experiment's "
            f"evaluate.min_accuracy {threshold:.4f}; the {CHAMPION} alias is unchanged"
        )
    client = mlflow.MlflowClient()
    note = ""
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    if current is not None and str(current.version) != version:
        champion = evaluation_of(name, str(current.version))
        if champion.dataset_digest == candidate.dataset_digest and champion.metric == candidate.metric:
            if not candidate.better_or_equal(champion):
                raise PromotionRefused(
                    f"{name!r} version {version} has {candidate.metric} {candidate.value:.4f}, worse than "
                    f"the {CHAMPION} (version {champion.version}: {champion.value:.4f}) on the same data; "
                    f"the {CHAMPION} alias is unchanged"
                )
            note = f" (was version {champion.version}: {champion.metric} {champion.value:.4f})"
        else:
            note = f" (version {champion.version} was evaluated on other data, so it was not compared)"
    client.set_registered_model_alias(name, CHAMPION, version)
    return f"{name!r} version {version} is now the {CHAMPION}: {candidate.metric} {candidate.value:.4f}{note}"
