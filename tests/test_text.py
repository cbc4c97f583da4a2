"""Text from the user's files: a folder of .txt files (with and without split folders) through the
four stages, raw-string SavedModels, and bad text refused before any run. A CSV with a text column
runs end to end in test_metric_values.py, which also recomputes its metrics."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.config import DataConfig, load_experiment
from pipelines.data import load_dataset

from .conftest import all_runs, assert_each_refused_before_any_run

# One epoch of a tiny model on a few hundred generated sentences: what is tested is the plumbing.
TINY_TEXT = [
    "train.epochs=2",
    "train.batch_size=32",
    "model.sequence_length=8",
    "model.embedding_dim=4",
    "model.max_tokens=60",
]
TINY_LSTM = [*TINY_TEXT, "model.units=[4]"]
TINY_CNN = [*TINY_TEXT, "model.filters=[4]", "model.dense_units=[]"]
GOOD = "good great lovely fine superb".split()
BAD = "bad awful dull poor broken".split()
THINGS = "film food phone plot service screen".split()
LATIN1 = "café au lait".encode("latin-1")


def _sentences(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`count` short sentences whose label is the polarity of their adjective."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for index in range(count):
        positive = index % 2 == 0
        word = rng.choice(GOOD if positive else BAD)
        texts.append(f"the {rng.choice(THINGS)} was {word}")
        labels.append("positive" if positive else "negative")
    return texts, labels


def _reviews_csv(path: Path, rows: int = 240) -> Path:
    """A CSV with an id column, a text column and a label column."""
    texts, labels = _sentences(rows)
    pd.DataFrame({"id": np.arange(rows), "review": texts, "sentiment": labels}).to_csv(path, index=False)
    return path


def _text_folder(root: Path, count: int = 120, splits: tuple[str, ...] = ()) -> Path:
    """One sub-folder of .txt files per class, inside each of `splits` (or at the top when none)."""
    for split in splits or ("",):
        texts, labels = _sentences(count, seed=len(split))
        for index, (text, label) in enumerate(zip(texts, labels, strict=True)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:04d}.txt").write_text(text, encoding="utf-8")
    return root


def _runs_by_stage(uri: str) -> dict[str, mlflow.entities.Run]:
    return {run.data.tags["stage"]: run for run in all_runs(uri)}


def _serve(saved_model: Path, texts: list[str]) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    (outputs,) = serve(**{input_name: tf.constant(texts)}).values()
    return outputs.numpy()


# make test's time budget: make test runs text end to end from a CSV (lstm-text, in
# test_metric_values.py, which also recomputes its metrics) and prepares a text folder (below).
@pytest.mark.slow
def test_text_folder_with_split_folders_keeps_them_and_trains_the_text_cnn(store, cli, tmp_path):
    folder = _text_folder(tmp_path / "aclmini", count=60, splits=("train", "test"))
    out = tmp_path / "served"
    overrides = ["data.source=text", f"data.path={folder}", *TINY_CNN]
    status, _, error = cli("run", "-e", "cnn-text", *overrides, "--out", str(out))
    assert status == 0, error
    runs = _runs_by_stage(store)
    params = runs["prepare"].data.params
    sizes = {split: int(params[f"dataset.size.{split}"]) for split in ("train", "validation", "test")}
    assert sizes == {"train": 54, "validation": 6, "test": 60}, "test/ kept, validation carved from train/"
    assert params["dataset.source"] == "text" and params["dataset.num_classes"] == "2"
    assert runs["export"].data.metrics["parity_max_abs_diff"] <= 1e-5
    assert _serve(out, ["the food was lovely"]).shape == (1, 2)
    assert "vectorize" in mlflow.artifacts.load_text(f"runs:/{runs['train'].info.run_id}/model_summary.txt")


def test_text_folder_without_split_folders_is_split_by_seed(store, cli, tmp_path):
    folder = _text_folder(tmp_path / "sentences", count=100)
    # The split is the prepare stage's (a text folder runs every stage in the test above, slow).
    status, _, error = cli("prepare", "-e", "cnn-text", "data.source=text", f"data.path={folder}", *TINY_CNN)
    assert status == 0, error
    params = _runs_by_stage(store)["prepare"].data.params
    sizes = {split: int(params[f"dataset.size.{split}"]) for split in ("train", "validation", "test")}
    assert sizes == {"train": 72, "validation": 8, "test": 20}
    again = load_dataset(DataConfig(source="text", path=str(folder)))
    assert again.digest == params["dataset.digest"], "the same files, the same seeded split"
    assert set(again.arrays("test").x) <= set(_sentences(100)[0])


def test_a_csv_text_column_is_inferred_for_text_models_and_numbers_stay_features_for_an_mlp(tmp_path):
    path = tmp_path / "mixed.csv"
    texts, labels = _sentences(30)
    pd.DataFrame({"stars": np.arange(30) % 5, "note": texts, "label": labels}).to_csv(path, index=False)
    own = ["data.source=csv", f"data.path={path}", "data.target=label"]
    for experiment, text_column, features in (
        ("cnn-text", "auto", ["note"]),
        ("mlp-digits", None, ["stars"]),
    ):
        config = load_experiment(experiment, own)
        assert config.data.text_column == text_column
        dataset = load_dataset(config.data, tmp_path / "store")
        assert dataset.features == features
    # With no numeric column beside it, the one text column is the input whatever the model.
    only_text = tmp_path / "only.csv"
    pd.DataFrame({"note": texts, "label": labels}).to_csv(only_text, index=False)
    dataset = load_dataset(DataConfig(source="csv", path=str(only_text), target="label"), tmp_path / "store")
    assert dataset.spec.input_dtype == "string" and dataset.features == ["note"]


def test_most_confident_right_and_wrong_examples_are_kept_batch_by_batch():
    from pipelines.stages.evaluate import ConfidentExamples

    shown = ConfidentExamples(["neg", "pos"], count=2)
    shown.add(
        np.array([b"a", b"b", b"c"]), np.array([1, 1, 0]), np.array([[0.1, 0.9], [0.4, 0.6], [0.2, 0.8]])
    )
    shown.add(np.array(["d", "e"], dtype=object), np.array([0, 0]), np.array([[0.99, 0.01], [0.3, 0.7]]))
    examples = shown.as_dict()
    assert [example["text"] for example in examples["right"]] == ["d", "a"]
    assert [example["text"] for example in examples["wrong"]] == ["c", "e"]
    assert examples["wrong"][0] == {"text": "c", "label": "neg", "predicted": "pos", "confidence": 0.8}


def _bad_text_file(root: Path, content: bytes) -> Path:
    _text_folder(root, count=10)
    (root / "positive" / "broken.txt").write_bytes(content)
    return root


def _folder_with_empty_class(root: Path) -> Path:
    _text_folder(root, count=10)
    (root / "empty").mkdir()
    (root / "empty" / "notes.md").write_text("not a .txt file")
    return root


def _bad_csv(path: Path, cell: str) -> Path:
    texts, labels = _sentences(10)
    texts[6] = cell
    pd.DataFrame({"review": texts, "label": labels}).to_csv(path, index=False)
    return path


def _latin1_csv(path: Path) -> Path:
    texts, labels = _sentences(10)
    texts[3] = "a café in paris"
    pd.DataFrame({"review": texts, "label": labels}).to_csv(path, index=False, encoding="latin-1")
    return path


def _two_text_columns(path: Path) -> Path:
    texts, labels = _sentences(10)
    pd.DataFrame({"title": texts, "review": texts, "label": labels}).to_csv(path, index=False)
    return path


BAD_TEXT = {
    "non-UTF-8 text file": (
        lambda tmp: ["data.source=text", f"data.path={_bad_text_file(tmp / 'f', LATIN1)}"],
        ["data.path", "broken.txt", "is not UTF-8", "0xe9"],
    ),
    "empty text file": (
        lambda tmp: ["data.source=text", f"data.path={_bad_text_file(tmp / 'f', b'  ')}"],
        ["data.path", "broken.txt", "is empty"],
    ),
    "empty CSV text cell": (
        lambda tmp: ["data.source=csv", f"data.path={_bad_csv(tmp / 'r.csv', '')}", "data.target=label"],
        ["data.text_column", "'review'", "empty cell in data row 7"],
    ),
    "non-UTF-8 CSV row": (
        lambda tmp: ["data.source=csv", f"data.path={_latin1_csv(tmp / 'r.csv')}", "data.target=label"],
        ["data.encoding", "'review'", "not UTF-8 in data row 4", "0xe9"],
    ),
    "two text columns": (
        lambda tmp: ["data.source=csv", f"data.path={_two_text_columns(tmp / 'r.csv')}", "data.target=label"],
        ["data.text_column", "title, review", "allowed: data.text_column=<one of them>"],
    ),
    "missing text column": (
        lambda tmp: [
            "data.source=csv",
            f"data.path={_bad_csv(tmp / 'r.csv', 'fine')}",
            "data.target=label",
            "data.text_column=body",
        ],
        ["data.text_column", "'body'", "allowed: review, label"],
    ),
    "text column with features": (
        lambda tmp: [
            "data.source=csv",
            f"data.path={_bad_csv(tmp / 'r.csv', 'fine')}",
            "data.target=label",
            "data.text_column=review",
            "data.features=[review]",
        ],
        ["data.text_column", "data.features", "allowed: one of them"],
    ),
    "class folder without text files": (
        lambda tmp: ["data.source=text", f"data.path={_folder_with_empty_class(tmp / 'f')}"],
        ["data.path", "'empty'", "holds no text file", ".txt"],
    ),
}


def test_each_bad_text_input_exits_2_naming_it_before_any_run(store, cli, tmp_path):
    assert_each_refused_before_any_run(store, cli, tmp_path, "lstm-text", BAD_TEXT, TINY_LSTM)


def test_an_mlp_on_text_is_refused_naming_the_models_that_read_text(store, cli, tmp_path):
    folder = _text_folder(tmp_path / "sentences", count=20)
    status, _, error = cli("run", "-e", "mlp-digits", "data.source=text", f"data.path={folder}")
    assert status == 2
    assert "model.architecture: 'mlp'" in error and "allowed for text: rnn, lstm, cnn" in error
    assert all_runs(store) == []


@pytest.mark.parametrize("experiment", ["lstm-text", "cnn-text"])
def test_shipped_text_experiments_read_the_embedded_reviews(experiment):
    config = load_experiment(experiment)
    assert config.data.name == "reviews" and config.data.source == "tfds"
    assert config.model.dropout > 0 and config.train.weight_decay > 0
    assert config.train.restore_best == "val_loss"


def test_embedded_reviews_are_short_labelled_sentences():
    dataset = load_dataset(DataConfig(name="reviews"))
    assert dataset.sizes() == {"train": 2160, "validation": 240, "test": 600}
    assert dataset.class_names == ["negative", "positive"]
    texts = dataset.arrays("test", 50).x
    assert all(1 <= len(text.split()) <= 40 for text in texts)
