# Two commands matter: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# TensorFlow reads this when it loads; it keeps its C++ info lines out of the terminal.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test test-slow lint format clean

install: $(VENV)/.installed

# uv (Astral's installer) resolves and installs the same packages as pip does, in parallel: about
# 15 s here against pip's 1.6 minutes, most of `make test`'s install time on a fresh machine.
# --compile-bytecode writes every module's .pyc once, at install, on all cores: where
# PYTHONDONTWRITEBYTECODE is set (as on this project's machines) Python never caches them
# itself, and each process that imports TensorFlow, Keras and MLflow spends about 11 s of CPU
# compiling their sources again (7 s of its 15 s import here).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[test]"
	touch $@

run: install
	$(BIN)/deeparch run -e default

# Both cores: pytest-xdist runs one worker per CPU and hands each a whole module at a time, so a
# fixture built once per module (a store of runs, fitted models) is built once. Modules go out in
# collection order, which tests/conftest.py sets slowest first (xdist would order them by their
# number of tests, which says little about their time).
test: install
	$(BIN)/pytest -n auto --dist loadscope --no-loadscope-reorder

# Exit status 5 means "no test collected": not a failure while there are no slow tests.
test-slow: install
	$(BIN)/pytest -m slow || [ $$? -eq 5 ]

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) exports
