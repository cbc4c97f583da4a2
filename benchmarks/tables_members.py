"""Would `mlp-tabular`'s four stacks do better trained apart? Its ensemble trains them together, on
the loss of their averaged output, which lets the members lean on each other; a deep ensemble trains
each alone. This trains single stacks (`model.ensemble=1`, seeds 0, 1, 2, ...) through the whole
pipeline on `benchmarks/tables.py`'s splits, averages the test probabilities of each four that the
logged models give, and reports their accuracy beside the single stacks'. Compare with the joint
ensemble's accuracy in `tables.json` / `tables_held_out.json` (the same splits).

    pip install -e '.[bench]'
    .venv/bin/python benchmarks/tables_members.py --tables attrition titanic
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import RESULTS_DIR, announce_machine
from tables import ALL_TABLES, run_mlp, scratch_store, write_results, write_table

MEMBERS = 4  # as mlp-tabular's model.ensemble


def member_probabilities(path: Path, target: str, seed: int, scratch: Path, overrides: list[str]):
    """One stack of mlp-tabular through the whole pipeline: its logged model's test probabilities,
    the class names, and its own test accuracy."""
    import mlflow
    import pandas as pd

    from pipelines.table_serving import probability_column

    pipeline = run_mlp(path, target, seed, scratch, ["model.ensemble=1", *overrides])
    frame = pd.read_csv(path)
    test = frame[frame.split == "test"]
    model = mlflow.pyfunc.load_model(pipeline.trained.model_uri)
    predicted = model.predict(test.drop(columns=[target, "split"]))
    classes = list(pipeline.prepared.dataset.class_names)
    probabilities = predicted[[probability_column(name) for name in classes]].to_numpy()
    accuracy = pipeline.evaluated.metrics["test_accuracy"]
    return probabilities, classes, test[target].astype(str).to_numpy(), accuracy


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["attrition", "titanic"], choices=list(ALL_TABLES))
    parser.add_argument("--groups", type=int, default=3, help="ensembles of four per table (seeds 0 to 4n-1)")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value for mlp-tabular")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "tables_members.json")
    args = parser.parse_args()
    reference = announce_machine()
    rows = []
    with scratch_store("deeparch-members-") as scratch:
        for name in args.tables:
            path, task = write_table(name, scratch)
            if task != "classification":
                parser.error(f"--tables: {name!r} is a regression table; allowed: classification tables")
            probabilities, singles = [], []
            for seed in range(MEMBERS * args.groups):
                member, classes, truth, accuracy = member_probabilities(
                    path, ALL_TABLES[name].target, seed, scratch, args.overrides
                )
                probabilities.append(member)
                singles.append(accuracy)
                print(f"{name} stack seed {seed}: test accuracy {accuracy:.4f}", flush=True)
            ensembles = [
                float(np.mean(np.array(classes)[averaged.argmax(axis=1)] == truth))
                for averaged in (
                    np.mean(probabilities[start : start + MEMBERS], axis=0)
                    for start in range(0, len(probabilities), MEMBERS)
                )
            ]
            rows.append(
                {
                    "table": name,
                    "single_stacks": singles,
                    "mean_single_stack": statistics.fmean(singles),
                    "ensembles_apart": ensembles,
                    "mean_ensemble_apart": statistics.fmean(ensembles),
                }
            )
    table = "\n".join(
        [
            "| table | one stack, mean | four stacks trained apart, mean |",
            "|---|---|---|",
            *(
                f"| {row['table']} | {row['mean_single_stack']:.2%} | {row['mean_ensemble_apart']:.2%} |"
                for row in rows
            ),
        ]
    )
    print(table)
    write_results(args.json, reference, args.overrides, members=MEMBERS, rows=rows, markdown=table)


if __name__ == "__main__":
    main()
