"""`deeparch compare`: one row per finished pipeline run, the params that differ, the metric, sorted."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

import mlflow
import pytest

from pipelines.metrics import higher_is_better

from .conftest import TINY, all_runs, run_cli, shared_store

TWO_EPOCHS = [*TINY, "train.epochs=2"]
NARROW = "mlp-digits-narrow"


@dataclass
class Store:
    uri: str
    sweep_run_id: str
    sweep_pipelines: set[str]
    other_pipeline: str
    failed_pipeline: str
    sweep_output: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two sweep runs (learning rates), one plain run (other units) and one FAILED pipeline run.

    Built once for the module: the tests only read the store.
    """
    from pipelines.cli import main

    with shared_store(tmp_path_factory.mktemp("compare")) as uri:
        status, sweep_output, error = run_cli(
            "sweep", "-e", "mlp-digits", *TWO_EPOCHS, "train.learning_rate=1e-3,1e-2"
        )
        assert status == 0, error
        assert main(["run", "-e", "mlp-digits", *TWO_EPOCHS, "model.units=[16]"]) == 0
        # A second MLflow experiment, for comparing a suite that spans two.
        assert main(["run", "-e", "mlp-digits", *TWO_EPOCHS, f"name={NARROW}", "model.units=[8]"]) == 0
        by_stage: dict[str, list] = {}
        narrow = mlflow.MlflowClient(uri).get_experiment_by_name(NARROW).experiment_id
        for run in all_runs(uri):
            if run.info.experiment_id == narrow:
                continue
            by_stage.setdefault(run.data.tags.get("stage"), []).append(run)
        (sweep,) = by_stage["sweep"]
        in_sweep = {r.info.run_id for r in by_stage["pipeline"] if "sweep_hash" in r.data.tags}
        (other,) = [r.info.run_id for r in by_stage["pipeline"] if r.info.run_id not in in_sweep]
        client = mlflow.MlflowClient(uri)
        failed = client.create_run(
            sweep.info.experiment_id, tags={"stage": "pipeline"}, run_name="mlp-digits"
        )
        client.set_terminated(failed.info.run_id, "FAILED")
        yield Store(uri, sweep.info.run_id, in_sweep, other, failed.info.run_id, sweep_output)


def _table(output: str) -> tuple[list[str], list[dict[str, str]]]:
    """Parse the aligned table at the top of `compare` output, cutting columns at the dashes."""
    lines = output.splitlines()
    dashes = next(index for index, line in enumerate(lines) if line.startswith("---"))
    spans, start = [], 0
    for width in (len(part) for part in lines[dashes].split("  ")):
        spans.append((start, start + width))
        start += width + 2
    header = [lines[dashes - 1][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[dashes + 1 :]:
        if not line.strip():
            break
        rows.append(dict(zip(header, (line[a:b].strip() for a, b in spans), strict=True)))
    return header, rows


def test_the_sweep_compared_here_nests_one_pipeline_run_per_value_under_one_sweep_run(runs):
    """The sweep path of `make test` (a grid of two axes runs in `make test-slow`, test_sweep.py)."""
    client = mlflow.MlflowClient(runs.uri)
    sweep = client.get_run(runs.sweep_run_id)
    assert sweep.info.run_name == "mlp-digits/sweep" and sweep.info.status == "FINISHED"
    assert sweep.data.tags["sweep_combinations"] == "2"
    nested = [
        run
        for run in all_runs(runs.uri)
        if run.data.tags.get("stage") == "pipeline"
        and run.data.tags.get("mlflow.parentRunId") == sweep.info.run_id
    ]
    assert {run.info.run_id for run in nested} == runs.sweep_pipelines and len(nested) == 2
    expected = {"train.learning_rate=1e-3": "0.001", "train.learning_rate=1e-2": "0.01"}
    assert {run.data.tags["sweep_overrides"] for run in nested} == set(expected)
    for run in nested:
        assert run.info.status == "FINISHED"
        assert run.data.tags["sweep_hash"] == sweep.data.tags["sweep_hash"]
        params = client.get_run(run.data.tags["train_run_id"]).data.params
        assert params["train.learning_rate"] == expected[run.data.tags["sweep_overrides"]]
        assert run.info.run_id in runs.sweep_output
    assert len({run.data.tags["config_hash"] for run in nested}) == 2
    assert "accuracy 0." in runs.sweep_output
    assert f"deeparch compare --sweep {sweep.info.run_id}" in runs.sweep_output


def test_metric_direction_maximises_accuracy_and_minimises_losses():
    assert higher_is_better("test_accuracy") and higher_is_better("val_accuracy")
    assert not any(map(higher_is_better, ("test_loss", "val_loss", "test_mse", "test_mae", "frechet_ratio")))


def test_compare_shows_each_finished_run_once_with_only_the_differing_params(runs, cli):
    status, output, _ = cli("compare", "-e", "mlp-digits")
    assert status == 0
    header, rows = _table(output)
    assert header == [
        "run",
        "model.units",
        "train.learning_rate",
        "test_accuracy",
        "best val_accuracy",
        "epoch",
    ]
    assert {row["run"] for row in rows} == runs.sweep_pipelines | {runs.other_pipeline}
    accuracies = [float(row["test_accuracy"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    client = mlflow.MlflowClient(runs.uri)
    for row in rows:
        train_run_id = client.get_run(row["run"]).data.tags["train_run_id"]
        history = client.get_metric_history(train_run_id, "val_accuracy")
        best = max(history, key=lambda point: (point.value, -point.step))
        assert float(row["best val_accuracy"]) == pytest.approx(best.value, abs=5e-5)
        assert int(row["epoch"]) == best.step
    assert {row["model.units"] for row in rows} == {"[128, 64]", "[16]"}
    # Then how to open the same runs in the MLflow UI.
    experiment_id = client.get_run(runs.other_pipeline).info.experiment_id
    assert f"#/experiments/{experiment_id}/runs" in output
    for row in rows:
        assert f"#/experiments/{experiment_id}/runs/{row['run']}" in output
    assert runs.failed_pipeline not in output


def test_compare_of_a_suite_links_its_experiments_pipeline_runs_side_by_side(runs, cli, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "experiments:\n"
        "  - mlp-digits\n"
        f"  - {{experiment: mlp-digits, overrides: [name={NARROW}, 'model.units=[8]']}}\n"
    )
    status, output, _ = cli("compare", "-e", str(suite))
    assert status == 0
    _, rows = _table(output)
    assert len(rows) == 4
    client = mlflow.MlflowClient(runs.uri)
    ids = sorted(client.get_experiment_by_name(name).experiment_id for name in ("mlp-digits", NARROW))
    (link,) = [line for line in output.splitlines() if "compare-experiments" in line]
    url = link.split()[-1]
    assert url.startswith("http://127.0.0.1:5000/#/compare-experiments/s?experiments=")
    query = dict(parse_qsl(url.split("?", 1)[1]))
    assert json.loads(query["experiments"]) == ids
    assert query["searchFilter"] == 'tags.stage = "pipeline"'


def test_compare_sorts_loss_metrics_lowest_first(runs, cli):
    status, output, _ = cli("compare", "-e", "mlp-digits", "--metric", "test_loss")
    assert status == 0
    header, rows = _table(output)
    assert header[-3:] == ["test_loss", "best val_loss", "epoch"]
    losses = [float(row["test_loss"]) for row in rows]
    assert losses == sorted(losses)
    assert "lower is better" in output


def test_compare_sweep_limits_rows_and_columns_to_that_sweep(runs, cli):
    status, output, _ = cli("compare", "--sweep", runs.sweep_run_id)
    assert status == 0
    header, rows = _table(output)
    assert header == ["run", "train.learning_rate", "test_accuracy", "best val_accuracy", "epoch"]
    assert {row["run"] for row in rows} == runs.sweep_pipelines
    assert {row["train.learning_rate"] for row in rows} == {"0.001", "0.01"}


def test_compare_csv_parses_with_full_precision_and_run_urls(runs, cli):
    status, output, _ = cli("compare", "-e", "mlp-digits", "--format", "csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(output)))
    assert len(rows) == 3
    assert set(rows[0]) == {
        "run",
        "model.units",
        "train.learning_rate",
        "test_accuracy",
        "best val_accuracy",
        "epoch",
        "url",
    }
    pipeline = mlflow.MlflowClient(runs.uri).get_run(rows[0]["run"])
    assert float(rows[0]["test_accuracy"]) == pipeline.data.metrics["test_accuracy"]
    assert all(row["url"].endswith(f"/runs/{row['run']}") for row in rows)


def test_compare_markdown_is_a_table_with_linked_runs(runs, cli):
    status, output, _ = cli("compare", "--sweep", runs.sweep_run_id, "--format", "markdown")
    assert status == 0
    table = [line for line in output.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    assert cells[0] == ["run", "train.learning_rate", "test_accuracy", "best val_accuracy", "epoch"]
    assert set(cells[1]) == {"---"}
    assert len(cells) == 2 + len(runs.sweep_pipelines)
    assert all(row[0].startswith("[") and "/runs/" in row[0] for row in cells[2:])
    assert "[runs table](" in output


def test_compare_explains_an_unknown_metric_and_a_run_that_is_not_a_sweep(runs, cli):
    status, _, error = cli("compare", "-e", "mlp-digits", "--metric", "test_nonsense")
    assert status == 2 and "test_accuracy" in error and "not logged" in error
    status, _, error = cli("compare", "--sweep", runs.other_pipeline)
    assert status == 2 and "give the id of a sweep run" in error
