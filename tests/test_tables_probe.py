"""benchmarks/tables_probe.py's counts: a classification no method scores above its majority class
is set apart, never counted as the MLP leading or trailing."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import tables_probe  # noqa: E402 - the benchmarks folder is not a package


def _run(mlp: float, boosting: float, linear: float, majority: float) -> dict:
    scores = {"mlp": mlp, "gradient_boosting": boosting, "linear": linear}
    return {
        "table": "t",
        "rows": 1000,
        "target": "y",
        "task": "classification",
        "majority": majority,
        "train_seconds": 10.0,
        **scores,
    }


def test_a_table_no_method_learns_is_set_apart_from_the_verdicts():
    learnt = _run(mlp=0.90, boosting=0.905, linear=0.88, majority=0.60)
    # Planted: every method at or under always answering the majority class (57 %).
    at_chance = _run(mlp=0.57, boosting=0.55, linear=0.57, majority=0.57)
    tally = tables_probe.counts([learnt, at_chance])["classification"]
    assert tally == {"tables": 1, "no_signal": 1, "beats_linear": 1, "near_boosting": 1, "best_of_three": 0}
    lines = tables_probe.markdown([learnt, at_chance]).splitlines()
    assert "no method beats it: not counted" in lines[-1]
    assert "not counted" not in lines[-2]
