"""The prepared format: each dataset read once into TFRecord shards under a content-addressed
folder, found again instead of re-read, streamed by every stage; splits drawn per example."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config import DataConfig
from pipelines.data import DataError, as_tf_dataset, load_dataset, open_dataset
from pipelines.data.source import TEST, TRAIN, VALIDATION, assign_splits

from .conftest import TINY, all_runs

QUICK = ["train.epochs=1", "train.batch_size=16"]


def _csv(path: Path, rows: int = 200, seed: int = 0) -> Path:
    """Two numeric columns (a few cells of `a` empty), a category with empty cells, a text label."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, rows), rng.normal(5, 2, rows)
    label = np.where(a + b / 2 > 2.5, "high", "low")
    a[5::50] = np.nan
    colour = rng.choice(["red", "green", "blue", "", "teal"], rows, p=[0.3, 0.3, 0.3, 0.09, 0.01])
    pd.DataFrame({"a": a, "b": b, "colour": colour, "label": label}).to_csv(path, index=False)
    return path


def _images(root: Path, per_class: int, size: tuple[int, int] = (12, 10)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    for offset, name in ((0, "dark"), (150, "light")):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(offset, offset + 100, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.jpg")
    return root


def test_assign_splits_holds_out_exact_seeded_shares_stable_across_calls():
    codes = assign_splits(1000, validation_fraction=0.1, test_fraction=0.2)
    assert (
        (codes == TEST).sum() == 200 and (codes == VALIDATION).sum() == 80 and (codes == TRAIN).sum() == 720
    )
    np.testing.assert_array_equal(codes, assign_splits(1000, 0.1, 0.2))
    assert not np.array_equal(codes, assign_splits(1000, 0.1, 0.2, seed=99))
    # Tiny data still gets one example in every split.
    assert sorted(assign_splits(3, 0.1, 0.1).tolist()) == [TRAIN, VALIDATION, TEST]


def test_a_dataset_is_prepared_once_then_found_again_with_the_same_digest(tmp_path):
    store = tmp_path / "datasets"
    first = load_dataset(DataConfig(name="digits"), store)
    again = load_dataset(DataConfig(name="digits"), store)
    assert (first.reused, again.reused) == (False, True)
    assert again.digest == first.digest and again.folder == first.folder == store / first.digest
    assert first.splits["train"].stored_dtype == "uint8", "pixels are stored compactly"
    assert all(Path(file).stat().st_size for file in first.splits["train"].files)
    # A deleted shard folder is prepared again, to the same digest.
    for file in first.folder.iterdir():
        file.unlink()
    first.folder.rmdir()
    assert open_dataset(first.digest, store) is None
    rebuilt = load_dataset(DataConfig(name="digits"), store)
    assert (rebuilt.reused, rebuilt.digest) == (False, first.digest)


def test_same_bytes_give_the_same_digest_and_one_changed_example_a_new_one(tmp_path):
    path = _csv(tmp_path / "table.csv")
    config = DataConfig(source="csv", path=str(path), target="label")
    digest = load_dataset(config, tmp_path / "a").digest
    assert load_dataset(config, tmp_path / "b").digest == digest, "a fresh store, the same data"
    frame = pd.read_csv(path)
    frame.loc[17, "a"] += 1.0
    frame.to_csv(path, index=False)
    os.utime(path, ns=(0, 10**9))  # a changed file is found by its size and time, not only its bytes
    changed = load_dataset(config, tmp_path / "a")
    assert not changed.reused and changed.digest != digest


def test_csv_read_in_small_chunks_gives_the_same_prepared_data(tmp_path, monkeypatch):
    from pipelines.data import csv_source, table

    path = _csv(tmp_path / "table.csv", rows=301)
    monkeypatch.setattr(table, "ROWS_PER_BIN", 10)  # all 16 bins for its 190-odd train rows
    config = DataConfig(source="csv", path=str(path), target="label")
    whole = load_dataset(config, tmp_path / "whole")
    monkeypatch.setattr(csv_source, "CHUNK_ROWS", 7)
    chunked = load_dataset(config, tmp_path / "chunked")
    assert chunked.digest == whole.digest and chunked.sizes() == whole.sizes()
    # The table's statistics merge across chunks (to float rounding), learnt on the train split.
    for mine, theirs in zip(chunked.spec.columns, whole.spec.columns, strict=True):
        assert (mine.name, mine.kind, mine.vocabulary, mine.missing) == (
            theirs.name,
            theirs.kind,
            theirs.vocabulary,
            theirs.missing,
        )
        np.testing.assert_allclose([mine.mean, mine.variance], [theirs.mean, theirs.variance], rtol=1e-12)
        assert mine.bin_edges == theirs.bin_edges, "the quantile sample does not depend on chunking"
    train = chunked.arrays("train").x
    a, b, colour = chunked.spec.columns
    assert (a.kind, b.kind, colour.kind) == ("numeric", "numeric", "categorical")
    assert a.missing and not b.missing, "a has empty cells in train, b none"
    a_train = train["a"]
    np.testing.assert_allclose([a.mean, a.variance], [np.nanmean(a_train), np.nanvar(a_train)], rtol=1e-5)
    np.testing.assert_allclose([b.mean, b.variance], [train["b"].mean(), train["b"].var()], rtol=1e-5)
    assert len(b.bin_edges) == 17 and b.bin_edges[0] == np.float32(train["b"].min())
    np.testing.assert_allclose(b.bin_edges[8], np.median(train["b"]), rtol=1e-6)
    values, counts = np.unique(train["colour"], return_counts=True)
    assert set(colour.vocabulary) == set(values[counts >= 2]), "values seen twice get their own index"
    assert "" in colour.vocabulary, "an empty cell is a category of its own"


def test_a_true_false_column_stays_numbers_in_a_chunk_where_empty_cells_make_it_text(tmp_path, monkeypatch):
    """pandas reads True/False as booleans (numbers, 1 and 0), but as text in a chunk with an empty
    cell: that chunk was refused as "numeric ... holds False" mid-file."""
    from pipelines.data import csv_source

    rng = np.random.default_rng(0)
    flag = rng.random(120) > 0.5
    frame = pd.DataFrame(
        {"x": rng.normal(size=120), "flag": flag.astype(object), "label": np.where(flag, "a", "b")}
    )
    frame.loc[90:95, "flag"] = None
    frame.to_csv(tmp_path / "flags.csv", index=False)
    monkeypatch.setattr(
        csv_source, "CHUNK_ROWS", 40
    )  # the first chunk, which gives the kinds, has no empty cell
    dataset = load_dataset(
        DataConfig(source="csv", path=str(tmp_path / "flags.csv"), target="label"), tmp_path
    )
    flag_column = next(column for column in dataset.spec.columns if column.name == "flag")
    assert flag_column.kind == "numeric"
    x = np.concatenate([dataset.arrays(split).x["flag"] for split in ("train", "validation", "test")])
    assert np.isnan(x).sum() == 6 and set(x[~np.isnan(x)]) == {0.0, 1.0}


def test_streamed_split_without_cache_trains_reproducibly(store, cli):
    for _ in range(2):  # `train` trains anew each time; both read the prepared shards streamed
        assert cli("train", "-e", "mlp-digits", *TINY, "data.cache=none")[0] == 0
    first, second = [r for r in all_runs(store) if r.data.tags["stage"] == "train"]
    assert first.data.params["data.cache"] == "none"
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert first.data.metrics[metric] == second.data.metrics[metric]


def test_streamed_training_split_is_shuffled_across_shards_with_a_bounded_buffer(tmp_path, monkeypatch):
    from pipelines.data import input_pipeline, prepared

    monkeypatch.setattr(prepared, "SHARD_BYTES", 4096)  # many small shards
    monkeypatch.setattr(prepared, "RECORD_BYTES", 1024)
    dataset = load_dataset(DataConfig(name="digits", max_examples=600), tmp_path / "store")
    train = dataset.splits["train"]
    assert len(train.files) > 4
    monkeypatch.setattr(input_pipeline, "SHUFFLE_MIN_EXAMPLES", 64)
    monkeypatch.setattr(input_pipeline, "SHUFFLE_BUFFER_BYTES", 0)

    def epoch_labels(seed: int) -> list[int]:
        batches = as_tf_dataset(train, 600, shuffle=True, seed=seed, cache="none")
        ((_, labels),) = batches.take(1)
        return labels.numpy().tolist()

    in_order = dataset.arrays("train").y.tolist()
    assert sorted(epoch_labels(0)) == sorted(in_order)
    assert epoch_labels(0) != in_order and epoch_labels(0) == epoch_labels(0)
    assert epoch_labels(0) != epoch_labels(1)


def test_image_folder_with_train_and_test_folders_keeps_those_splits(store, cli, tmp_path):
    root = tmp_path / "photos"
    _images(root / "train", per_class=6)
    _images(root / "test", per_class=3)
    overrides = ["data.source=images", f"data.path={root}", "data.image_size=[8,8]", *QUICK]
    # The splits are the prepare stage's (the stages after it read image folders in test_own_data).
    assert cli("prepare", "-e", "cnn-digits", *overrides)[0] == 0
    prepare = [r for r in all_runs(store) if r.data.tags["stage"] == "prepare"][0]
    params = prepare.data.params
    assert int(params["dataset.size.test"]) == 6
    assert int(params["dataset.size.train"]) + int(params["dataset.size.validation"]) == 12
    assert params["dataset.input_shape"] == "[8, 8, 3]"
    assert Path(params["dataset.prepared_path"]).is_dir()
    assert prepare.data.metrics["dataset_megabytes"] > 0


def test_an_undecodable_image_exits_2_naming_the_file_before_any_run(store, cli, tmp_path):
    root = _images(tmp_path / "photos", per_class=4)
    broken = root / "light" / "2.jpg"
    broken.write_bytes(b"not an image at all")
    status, _, error = cli("run", "-e", "cnn-digits", "data.source=images", f"data.path={root}", *QUICK)
    assert status == 2
    assert str(broken) in error and "cannot be decoded" in error and "Traceback" not in error
    assert all_runs(store) == []
    assert not list((tmp_path / "mlruns" / "datasets").glob(".preparing-*")), "nothing half-written is left"


@pytest.mark.slow  # make test's time budget: make test runs an .npz file end to end (test_own_data)
def test_folder_of_npy_files_is_memory_mapped_and_runs_end_to_end(store, cli, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "x.npy", rng.integers(0, 256, (80, 6, 6, 1), dtype=np.uint8))
    np.save(folder / "y.npy", rng.integers(0, 3, 80))
    assert cli("run", "-e", "mlp-digits", "data.source=npz", f"data.path={folder}", *QUICK)[0] == 0
    prepare = [r for r in all_runs(store) if r.data.tags["stage"] == "prepare"][0]
    assert prepare.data.params["dataset.input_shape"] == "[6, 6, 1]"
    assert sum(int(prepare.data.params[f"dataset.size.{s}"]) for s in ("train", "validation", "test")) == 80


def test_an_npz_file_too_big_for_memory_is_refused_pointing_at_npy_folders(store, cli, tmp_path, monkeypatch):
    from pipelines.data import array_source

    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((100, 10)), y=np.zeros(100))
    monkeypatch.setattr(array_source, "available_memory_bytes", lambda: 1000)
    status, _, error = cli("run", "-e", "mlp-digits", "data.source=npz", f"data.path={path}", *QUICK)
    assert status == 2
    assert "data.path" in error and "read whole" in error and "folder of .npy files" in error
    assert all_runs(store) == []


def test_a_full_disk_is_said_plainly_and_leaves_nothing_behind(tmp_path, monkeypatch):
    from pipelines.data import prepared

    def full(self, x, y):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepared._SplitWriter, "_write", full)
    store = tmp_path / "datasets"
    with pytest.raises(DataError, match="no space left") as error:
        load_dataset(DataConfig(name="digits"), store)
    assert "DEEPARCH_DATASET_STORE" in str(error.value)
    assert [path.name for path in store.iterdir()] == []


@pytest.mark.slow  # make test's time budget: 3,000 mock MNIST images a split through four stages
def test_catalog_dataset_streams_through_all_four_stages_reading_only_bounded_samples(
    store, cli, monkeypatch
):
    """Under mock data, no stage asks the prepared dataset for a whole split as arrays."""
    import tensorflow_datasets as tfds

    from pipelines.data import prepared

    requested: list[int | None] = []
    original = prepared.PreparedDataset.arrays

    def recording(self, split, limit=None):
        requested.append(limit)
        return original(self, split, limit)

    monkeypatch.setattr(prepared.PreparedDataset, "arrays", recording)
    with tfds.testing.mock_data(num_examples=3000):
        status, _, error = cli(
            "run", "-e", "mlp-digits", "data.name=mnist", "data.download=false", "data.cache=none", *QUICK
        )
    assert status == 0, error
    assert requested and None not in requested and max(requested) <= 256
    runs = {r.data.tags["stage"]: r for r in all_runs(store)}
    assert int(runs["prepare"].data.params["dataset.size.test"]) == 3000
    assert "test_accuracy" in runs["evaluate"].data.metrics
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5


BOUNDED_RUN = """
import resource, sys
import tensorflow_datasets as tfds
from pipelines.cli import main
with tfds.testing.mock_data(num_examples=int(sys.argv[1])):
    status = main(["run", "-e", "mlp-digits", "data.name=mnist", "data.download=false",
                   "data.cache=none", "train.epochs=1", "train.batch_size=256"])
print("peak_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(status)
"""


@pytest.mark.slow
def test_peak_memory_of_a_whole_pipeline_does_not_grow_with_the_catalog_dataset(tmp_path):
    """40,000 mock MNIST images per split (94 MB as float32 arrays per split) cost the pipeline no
    more memory than 2,000: every stage streams."""
    import subprocess
    import sys

    peaks = {}
    for examples in (2_000, 40_000):
        folder = tmp_path / str(examples)
        folder.mkdir()
        environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
        result = subprocess.run(
            [sys.executable, "-c", BOUNDED_RUN, str(examples)],
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        peaks[examples] = int(result.stdout.split("peak_kb")[-1]) * 1024
    growth = peaks[40_000] - peaks[2_000]
    assert growth < 80e6, f"peak memory grew by {growth / 1e6:.0f} MB: {peaks}"


def test_a_number_gets_fewer_bins_when_its_train_values_are_few():
    from pipelines.data.table import NUMBER_BINS, ROWS_PER_BIN, number_bins

    assert number_bins(100_000) == NUMBER_BINS
    assert number_bins(NUMBER_BINS * ROWS_PER_BIN) == NUMBER_BINS
    assert number_bins(941) == 941 // ROWS_PER_BIN, "attrition's train split: 9 bins of 100 rows or more"
    assert number_bins(2 * ROWS_PER_BIN - 1) == 0, "one bin would only repeat the standardised number"
