"""The docs cannot drift from the code: every `deeparch` command shown in README.md and the docs
site parses with the CLI and, where it names a shipped experiment, its overrides validate against
the config schema; the README stays short; no module imports itself back through others; the
layout the design page shows is the tree's; measured tables come from results files."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from pipelines import config as config_module
from pipelines.cli import _parser
from pipelines.config import ConfigError, load_experiments, shipped_experiments
from pipelines.sweep import plan_sweep

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs" / "pages").rglob("*.md"))]
README_MAX_LINES = 250
SHELL_BLOCKS = ("bash", "sh", "shell", "console")
# A table cell that is a measured figure: 0.9554, 97.2 %, 31.7, 1.08x, 98.96% ± 0.59%, 130 (156).
NUMBER = r"[~≈]?[-+]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?\s*(%|s|x|GB|MB)?"
MEASUREMENT = re.compile(rf"^\**{NUMBER}(\s*±.*|\s*\(.*\))?\**$")
# Pages whose measured tables are being moved into results files elsewhere: remove a page from
# here once its tables are `<!-- results: ... -->` markers.
TABLES_NOT_YET_FROM_RESULTS: set[str] = set()
# Words of a command that stand for a value the reader supplies.
PLACEHOLDERS = {
    "TRAIN_RUN_ID": "0123456789abcdef0123456789abcdef",
    "SWEEP_RUN_ID": "0123456789abcdef0123456789abcdef",
    "TUNE_RUN_ID": "0123456789abcdef0123456789abcdef",
    "RUN_ID": "0123456789abcdef0123456789abcdef",
}


def _commands(document: Path) -> list[tuple[int, str]]:
    """(line number, command) of every `deeparch ...` line in the document's code blocks, with
    continuation lines joined and comments dropped."""
    commands, in_code, pending, start = [], False, "", 0
    for number, line in enumerate(document.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            # Shell blocks only: a block without a language shows a program's output.
            in_code = not in_code and line.strip().removeprefix("```") in SHELL_BLOCKS
            continue
        if not in_code:
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending, start = text[:-1] + " ", start or number
            continue
        pending = ""
        command = _deeparch_command(_uncommented(text))
        if command is not None:
            commands.append((start or number, command))
        start = 0
    return commands


def _deeparch_command(line: str) -> str | None:
    """The arguments of a shell line that runs deeparch (after `VAR=value` settings and a path
    such as `.venv/bin/`), or None for any other line (program output, another command)."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words.pop(0)
    if not words or not (words[0] == "deeparch" or words[0].endswith("/deeparch")):
        return None
    return shlex.join(words[1:])


def _uncommented(line: str) -> str:
    """The line without a trailing `# comment` (a `#` inside quotes is kept)."""
    quote = None
    for index, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (index == 0 or line[index - 1] == " "):
            return line[:index].rstrip()
    return line


def _all_commands() -> list[tuple[str, str]]:
    return [
        (f"{document.relative_to(ROOT)}:{number}", command)
        for document in DOCUMENTS
        for number, command in _commands(document)
    ]


COMMANDS = _all_commands()


def test_the_docs_show_deeparch_commands_at_all():
    assert len(COMMANDS) > 40, "the extraction of commands from the docs broke"
    assert {command.split()[0] for _, command in COMMANDS} >= {
        "run",
        "train",
        "sweep",
        "tune",
        "compare",
        "export",
    }


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_every_documented_command_parses_and_its_overrides_validate(where, command):
    words = [PLACEHOLDERS.get(word, word) for word in shlex.split(command)]
    words = [word for word in words if word not in ("...",) and not re.fullmatch(r"\[.*\]", word)]
    try:
        args = _parser().parse_args(words)
    except SystemExit as exit:
        pytest.fail(f"{where}: `deeparch {command}` does not parse (exit {exit.code})")
    experiment = getattr(args, "experiment", None)
    if experiment not in shipped_experiments():
        return  # a file of the reader's, or no experiment: parsing is what can be checked
    overrides = [word for word in getattr(args, "overrides", []) if "=" in word]
    try:
        if args.command == "sweep":
            plan_sweep(experiment, overrides)
        else:
            load_experiments(experiment, overrides)
    except ConfigError as error:
        pytest.fail(f"{where}: `deeparch {command}` is refused: {error}")


def test_readme_is_short_enough_to_read_in_five_minutes():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def _modules() -> dict[str, Path]:
    modules = {}
    for package in ("pipelines", "models"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imported(path: Path, known: dict[str, Path], itself: str) -> set[str]:
    """The project modules a module imports anywhere in it (at import time or inside a function),
    leaving out `if TYPE_CHECKING:` blocks, which never run."""
    names = set()
    stack = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    resolved = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != itself and name not in ("pipelines", "models"):
            resolved.add(name)
    return resolved


def test_no_module_imports_itself_back_through_others():
    known = _modules()
    graph = {name: _imported(path, known, name) for name, path in known.items()}
    circles = []
    for start in graph:
        # Depth-first from each module: a path back to it is a circle.
        stack = [(start, (start,))]
        seen = set()
        while stack:
            name, path = stack.pop()
            for imported in graph[name]:
                if imported == start:
                    circles.append(" -> ".join((*path, start)))
                elif imported not in seen:
                    seen.add(imported)
                    stack.append((imported, (*path, imported)))
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))


def test_the_layout_on_the_design_page_matches_the_tree():
    page = (ROOT / "docs" / "pages" / "design.md").read_text()
    block = page.split("## Layout", 1)[1].split("```")[1]
    shown = {line.split()[0].rstrip("/") for line in block.splitlines() if line and not line.startswith(" ")}
    shown_nested = {
        line.split()[0].rstrip("/")
        for line in block.splitlines()
        if line.startswith("  ") and line.strip() and not line.startswith("   ")
    }
    assert all((ROOT / name).is_dir() for name in shown), shown
    assert all((ROOT / "pipelines" / name).is_dir() for name in shown_nested), shown_nested
    top = {path.name for path in ROOT.iterdir() if path.is_dir() and not path.name.startswith(".")}
    expected = {"models", "pipelines", "tests", "benchmarks", "examples", "docs"}
    assert expected <= top and expected <= shown, f"the layout block misses {expected - shown}"


def _docs_hooks():
    """docs/hooks.py, the MkDocs hooks that generate what the docs show."""
    import sys

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return hooks


def test_config_reference_is_generated_from_the_schema():
    page = _docs_hooks().configuration_reference()
    for key in ("data.delimiter", "train.epochs", "model.units", "tune.space", "export.dir"):
        assert f"`{key}`" in page
    assert config_module.DataConfig.model_fields["encoding"].description in page


def test_every_results_marker_names_a_results_file_that_holds_its_table():
    hooks = _docs_hooks()
    pages = sorted((ROOT / "docs" / "pages").rglob("*.md"))
    names = {name for page in pages for name in hooks.RESULTS_MARKER.findall(page.read_text())}
    assert len(names) >= 10
    for name in sorted(names):
        assert f"`benchmarks/results/{name}`" in hooks.results_table(name)


def test_no_page_types_a_table_of_measured_figures_by_hand():
    """A figure in a docs table comes from a results file (a marker the docs build fills), so that
    it cannot show what no file holds; a row with two or more measured cells is one typed by hand."""
    typed = []
    for page in sorted((ROOT / "docs" / "pages").rglob("*.md")):
        if page.name in TABLES_NOT_YET_FROM_RESULTS:
            continue
        for number, line in enumerate(page.read_text().splitlines(), 1):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if line.startswith("|") and sum(bool(MEASUREMENT.match(cell)) for cell in cells) >= 2:
                typed.append(f"{page.relative_to(ROOT)}:{number}: {line}")
    assert not typed, "measure these into benchmarks/results/ and show them by marker:\n" + "\n".join(typed)
