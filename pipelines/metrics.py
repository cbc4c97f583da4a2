"""What the names of logged metrics say: which way is better. Shared by `compare` (sorting runs)
and `tune` (the study's direction), so that neither imports the other."""

from __future__ import annotations

# Parts of a metric's name that make it an error or a cost: lower is better.
LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "error", "frechet", "diff", "seconds")


def higher_is_better(metric: str) -> bool:
    """Accuracy-like metrics are maximised; loss/mse/mae-like ones minimised."""
    return not any(part in metric.lower() for part in LOWER_IS_BETTER)
