"""MkDocs hooks: what the docs show is generated at build time, so that it cannot drift.

- `reference/configuration.md` lists every field of an experiment file from the pydantic schema
  in `pipelines.config`: its dotted key, type, default and description.
- A page line `<!-- results: NAME.json -->` becomes the table a benchmark printed, as
  `benchmarks/results/NAME.json` holds it (its `markdown`), with the commit, date, machine
  reference and command that measured it.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION_PAGE = "reference/configuration.md"
RESULTS = ROOT / "benchmarks" / "results"
RESULTS_MARKER = re.compile(r"^<!-- results: (\S+\.json) -->$", re.MULTILINE)


def on_files(files, config):
    """Add the generated pages to the site."""
    from mkdocs.structure.files import File  # only when building: the tests import this file too

    files.append(File.generated(config, CONFIGURATION_PAGE, content=configuration_reference()))
    return files


def on_page_markdown(markdown, page, config, files):
    """Fill each results marker with its file's table."""
    return RESULTS_MARKER.sub(lambda found: results_table(found.group(1)), markdown)


def results_table(name: str) -> str:
    """A benchmark's table as its results file holds it, and where it comes from."""
    path = RESULTS / name
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"results marker: {path} cannot be read ({error})") from None
    if "markdown" not in record:
        raise ValueError(f"results marker: {path} holds no `markdown` table; rerun its benchmark")
    reference = next(
        (
            record[key]
            for key in ("reference_matmul_seconds", "matmul_seconds", "reference_seconds")
            if key in record
        ),
        None,
    )
    if reference is None and "reference_seconds_before" in record:  # make_run.py's
        reference = {"before": record["reference_seconds_before"], "after": record["reference_seconds_after"]}
    facts = [f"`benchmarks/results/{name}`"]
    facts += [
        f"{label} {record[key]}"
        for key, label in (("commit", "commit"), ("date", "measured"))
        if key in record
    ]
    if isinstance(reference, dict):  # measured before and after: {"before": s, "after": s}
        facts.append(
            f"2048x2048 matrix product {reference['before']:.3f} s before, {reference['after']:.3f} s after"
        )
    elif reference is not None:
        facts.append(f"2048x2048 matrix product {reference:.3f} s")
    facts.append(record.get("machine", "machine not recorded"))
    command = f" Rerun: `{record['command']}`." if "command" in record else ""
    return f"{record['markdown']}\n\n*{'; '.join(facts)}.{command}*"


def configuration_reference() -> str:
    """Markdown tables of every experiment-file field, section by section."""
    sys.path.insert(0, str(ROOT))
    from pydantic import BaseModel

    from pipelines.config import ExperimentConfig

    lines = [
        "# Configuration reference",
        "",
        "Every key of an experiment file, generated from the schema in `pipelines/config` when the docs "
        "are built. Override any of them on the command line as a dotted `key=value` "
        "(`train.epochs=20`, `model.units=[64,64]`); see [Experiments](../experiments.md).",
        "",
    ]
    top = [(name, field) for name, field in ExperimentConfig.model_fields.items() if not _model_of(field)]
    lines += ["## Experiment", "", *_table("", top)]
    for name, field in ExperimentConfig.model_fields.items():
        models = _model_of(field)
        if not models:
            continue
        for model in models:
            title = f"`{name}`"
            if len(models) > 1:
                architecture = model.model_fields["architecture"].default
                title += f" with `architecture: {architecture}`"
            lines += [f"## {title}", ""]
            if model.__doc__ and model.__doc__ is not BaseModel.__doc__:
                lines += [" ".join(model.__doc__.split()), ""]
            lines += _table(f"{name}.", list(model.model_fields.items()))
    return "\n".join(lines) + "\n"


def _model_of(field) -> list[type]:
    """The pydantic models a field holds: one section, or the members of a union (model)."""
    from pydantic import BaseModel

    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    candidates = typing.get_args(annotation) if union else (annotation,)
    return [item for item in candidates if isinstance(item, type) and issubclass(item, BaseModel)]


def _table(prefix: str, fields) -> list[str]:
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in fields:
        default = field.get_default(call_default_factory=True)
        default = "required" if field.is_required() else f"`{_shown(default)}`"
        description = _escaped(field.description or "")
        bounds = " ".join(bound for bound in map(_bound, field.metadata) if bound)
        kind = _type(field.annotation) + (f" {bounds}" if bounds else "")
        rows.append(f"| `{prefix}{name}` | {kind} | {default} | {description} |")
    return [*rows, ""]


def _escaped(text: str) -> str:
    """Plain text in a table cell: pipes and, outside code spans, brackets read as text, not as
    table borders or link references."""
    parts = text.replace("|", "\\|").split("`")
    for index in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[index] = parts[index].replace("[", "\\[").replace("]", "\\]")
    return "`".join(parts)


def _shown(value) -> str:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return "{...}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text.replace("|", "\\|").replace("`", "'")


def _type(annotation) -> str:
    return _named(annotation).replace("|", "\\|")


def _named(annotation) -> str:
    """A type as a reader writes it: `int > 0`, `list[str]`, `'csv' or 'npz'`, `str or None`."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        base, *extras = arguments
        bounds = [_bound(item) for extra in extras for item in getattr(extra, "metadata", [extra])]
        return " ".join([_named(base), *(bound for bound in bounds if bound)])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_named(argument) for argument in arguments)
    if origin is typing.Literal:
        return " or ".join(repr(argument) for argument in arguments)
    if origin in (list, dict, tuple):
        return f"{origin.__name__}[{', '.join(_named(argument) for argument in arguments)}]"
    if annotation is type(None):
        return "None"
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _bound(constraint) -> str:
    for attribute, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if getattr(constraint, attribute, None) is not None:
            return f"{symbol} {getattr(constraint, attribute)}"
    if getattr(constraint, "min_length", None) is not None:
        return f"(at least {constraint.min_length})"
    if getattr(constraint, "max_length", None) is not None:
        return f"(at most {constraint.max_length})"
    return ""
