"""A newcomer's first hour: output a person can follow, and a Fréchet distance of singular
covariances without warnings. (Own data in its own MLflow experiment, without augmentation that
breaks a forecast: `test_own_data.py`; pipeline runs that carry their config: `test_pipeline.py`;
a GAN's headline: `test_gan_pipeline.py`.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from pipelines.gan_scores import frechet_distance

from .conftest import TINY

REPOSITORY = Path(__file__).resolve().parent.parent
ELAPSED = r"\(\d+:\d\d\)"
# Every line a default `deeparch run` may print: ours, never a library's.
OWN_LINES = [
    rf"\[\d+/\d+\] [\w.-]+( · [a-z ]+)? {ELAPSED}",  # an experiment or a stage starts
    r"Epoch \d+/\d+ - \d+\.\ds( - \w+: -?[\d.e+-]+)*",  # one line per epoch
    r"reused \w+ from run [0-9a-f]{32}",
    r"",
    r"run +architecture +dataset +result +export path",
    r"[- ]+",
    r"[0-9a-f]{32} +\w+ +\w+ +accuracy [01]\.\d{4} +\S+",
    r"Runs in the MLflow UI \(start it with `deeparch ui`, or `mlflow ui .*`\):",
    r"  http://127\.0\.0\.1:5000/#/experiments/\d+/runs",
]


# make test's time budget: a fresh process that imports TensorFlow, generates the digits and runs
# two experiments, about 22 s of a worker (make test runs `deeparch` in process).
@pytest.mark.slow
def test_a_default_run_prints_progress_epoch_lines_and_the_summary_and_nothing_from_libraries(tmp_path):
    suite = tmp_path / "two.yaml"
    suite.write_text(
        "experiments: [mlp-digits, {experiment: mlp-digits, overrides: ['model.units=[16]']}]\n"
        f"overrides: {TINY + ['train.epochs=2']}\n"
    )
    # A fresh TFDS folder and store, as on a new machine, and TensorFlow's logging as the CLI sets it.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(
        TFDS_DATA_DIR=str(tmp_path / "tfds"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        PYTHONPATH=str(REPOSITORY),
    )
    (tmp_path / "mlruns").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "-e", str(suite)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    foreign = [line for line in lines if not any(re.fullmatch(own, line) for own in OWN_LINES)]
    assert foreign == []
    announced = [re.sub(rf" {ELAPSED}$", "", line) for line in lines if line.startswith("[")]
    assert announced == [
        f"[{position}/2] mlp-digits{stage}"
        for position in (1, 2)
        for stage in ("", " · prepare", " · train", " · evaluate", " · export")
    ]
    assert sum(line.startswith("Epoch ") for line in lines) == 4, "one line per epoch, two epochs each"


def test_frechet_distance_of_rank_deficient_covariances_is_exact_and_warns_nothing():
    # Dead units (constant features) and fewer samples than features make both covariances
    # singular. With a = (x, 0, 0) and b = (2x, 0, 0): d² = mean(x)² + var(x) (1 + 4 - 2·2).
    x = np.random.default_rng(0).normal(0.5, 1.0, (50, 1))
    dead = np.zeros((50, 2))
    wide = np.random.default_rng(1).normal(size=(5, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distance = frechet_distance(np.hstack([x, dead]), np.hstack([2 * x, dead]))
        wide_distance = frechet_distance(wide, wide[::-1] + 1.0)
    assert distance == pytest.approx(x.mean() ** 2 + x.var(ddof=1), rel=1e-9)
    assert np.isfinite(wide_distance) and wide_distance == pytest.approx(20.0, rel=1e-6)
