"""deeparch from Python: run an experiment at two widths, compare the runs, export the better model.

    python examples/from_python.py                  # as the experiment file says (about a minute)
    python examples/from_python.py train.epochs=1   # overrides for every run, as on the command line

The same works line by line in a notebook; errors are exceptions (ConfigError for bad input).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines import api
from pipelines.compare import render

EXPERIMENT = Path(__file__).with_name("residual-mlp-digits.yaml")


def main(overrides: list[str]) -> Path:
    """Train, evaluate and compare two widths of the residual MLP; export the better one."""
    results = [
        api.run(EXPERIMENT, [*overrides, f"model.params.width={width}"], export=False) for width in (32, 64)
    ]
    for result in results:
        width = result.config.model.params["width"]
        print(f"width {width}: test accuracy {result.metrics['test_accuracy']:.4f} ({result.model_uri})")
    print(render(api.compare(EXPERIMENT)))
    best = max(results, key=lambda result: result.metrics["test_accuracy"])
    exported = api.export(best.trained, out=Path("exports") / "residual-mlp-best")
    print(f"exported the width-{best.config.model.params['width']} model to {exported.path}")
    return exported.path


if __name__ == "__main__":
    main(sys.argv[1:])
