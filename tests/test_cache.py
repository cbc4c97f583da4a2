"""The stage cache: unchanged stages are reused, changed ones and their dependants recomputed."""

from __future__ import annotations

from .conftest import TINY, all_runs


def _stage_counts(uri: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in all_runs(uri):
        counts[run.data.tags["stage"]] = counts.get(run.data.tags["stage"], 0) + 1
    return counts


def _newest_pipeline(uri: str):
    return [r for r in all_runs(uri) if r.data.tags["stage"] == "pipeline"][0]


def test_unchanged_run_reuses_every_stage_and_links_them_from_the_new_parent(store, cli):
    assert cli("run", "-e", "mlp-digits", *TINY)[0] == 0
    first = _newest_pipeline(store)
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY)
    assert status == 0
    for stage in ("prepare", "train", "evaluate", "export"):
        assert f"reused {stage} from run {first.data.tags[f'{stage}_run_id']}" in output
    assert _stage_counts(store) == {"pipeline": 2, "prepare": 1, "train": 1, "evaluate": 1, "export": 1}
    second = _newest_pipeline(store)
    assert second.info.run_id != first.info.run_id
    assert second.data.tags["reused.train"] == first.data.tags["train_run_id"]
    assert second.data.metrics["test_accuracy"] == first.data.metrics["test_accuracy"]


def test_changing_epochs_reruns_train_evaluate_export_but_not_prepare(store, cli):
    assert cli("run", "-e", "mlp-digits", *TINY)[0] == 0
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY, "train.epochs=2")
    assert status == 0
    assert "reused prepare" in output and "reused train" not in output
    assert _stage_counts(store) == {"pipeline": 2, "prepare": 1, "train": 2, "evaluate": 2, "export": 2}


def test_force_recomputes_one_stage_and_what_depends_on_it(store, cli):
    assert cli("run", "-e", "mlp-digits", *TINY)[0] == 0
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY, "--force", "evaluate")
    assert status == 0
    assert "reused train" in output and "reused evaluate" not in output
    counts = _stage_counts(store)
    assert counts["evaluate"] == 2 and counts["train"] == 1 and counts["export"] == 1, (
        "export reads train only"
    )
    assert cli("run", "-e", "mlp-digits", *TINY, "--force")[0] == 0
    assert _stage_counts(store) == {"pipeline": 3, "prepare": 2, "train": 2, "evaluate": 3, "export": 2}


def test_force_rejects_an_unknown_stage(store, cli):
    status, _, error = cli("run", "-e", "mlp-digits", *TINY, "--force", "training")
    assert status == 2 and "allowed: all, prepare, train, evaluate, export" in error


def test_export_is_recomputed_when_its_saved_model_was_deleted(store, cli):
    import shutil
    from pathlib import Path

    assert cli("run", "-e", "mlp-digits", *TINY)[0] == 0
    shutil.rmtree(Path(_newest_pipeline(store).data.tags["export_path"]))
    status, output, _ = cli("run", "-e", "mlp-digits", *TINY)
    assert status == 0 and "reused train" in output and "reused export" not in output
    assert Path(_newest_pipeline(store).data.tags["export_path"]).is_dir()
