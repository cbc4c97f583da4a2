"""Shipped sequence experiments pointed at real series that no one tuned them for beat the naive
forecast (the last past value, repeated) on the test stretch.

The series are statsmodels' bundled data, read offline: yearly sunspot numbers (1700-2008) and
monthly El Niño sea-surface temperatures (1950-2010). The experiments are the MNIST-1D ones, with
their defaults; a forecast drops their classification augmentation (and says so).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from .conftest import all_runs

EXPERIMENTS = ["mlp-mnist1d", "cnn-mnist1d", "rnn-mnist1d", "lstm-mnist1d"]


def _sunspots(folder: Path) -> list[str]:
    """Yearly sunspot numbers: `year,sunspots`."""
    import statsmodels.api as sm

    data = sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": "sunspots"})
    data["year"] = data["year"].astype(int)
    path = folder / "sunspots.csv"
    data.to_csv(path, index=False)
    return [f"data.path={path}", "data.target=sunspots", "data.time_column=year"]


def _elnino(folder: Path) -> list[str]:
    """Monthly sea-surface temperatures, one row per month: `date,temperature`."""
    import pandas as pd
    import statsmodels.api as sm

    wide = sm.datasets.elnino.load_pandas().data
    months = {name: number for number, name in enumerate(wide.columns[1:], start=1)}
    long = wide.melt(id_vars="YEAR", var_name="month", value_name="temperature")
    long["date"] = pd.to_datetime(
        {"year": long["YEAR"].astype(int), "month": long["month"].map(months), "day": 1}
    )
    path = folder / "elnino.csv"
    long.sort_values("date")[["date", "temperature"]].to_csv(path, index=False)
    return [f"data.path={path}", "data.target=temperature", "data.time_column=date"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_shipped_experiment_beats_the_naive_forecast_on_a_yearly_and_a_monthly_series(
    experiment, store, cli, tmp_path
):
    for series in (_sunspots, _elnino):
        overrides = ["data.source=csv", "data.task=forecast", "data.window=12", *series(tmp_path)]
        status, _, error = cli("run", "-e", experiment, *overrides)
        assert status == 0, error
    pipelines = [run for run in all_runs(store) if run.data.tags.get("stage") == "pipeline"]
    assert len(pipelines) == 2
    for run in pipelines:
        metrics = mlflow.MlflowClient(store).get_run(run.info.run_id).data.metrics
        assert metrics["test_rmse"] < metrics["test_naive_rmse"], (run.info.run_name, metrics)
