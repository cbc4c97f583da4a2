# Two commands matter: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# TensorFlow reads this when it loads; it keeps its C++ info lines out of the terminal.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test test-slow lint format clean docs docs-serve benchmarks benchmarks-quick

install: $(VENV)/.installed

# uv (Astral's installer) resolves and installs the same packages as pip does, in parallel: about
# 4 s here against pip's 1.6 minutes.
#
# Bytecode: a process that imports TensorFlow, Keras and MLflow from sources spends about 8 s of
# CPU compiling them, and where PYTHONDONTWRITEBYTECODE is set (as on this project's machines)
# Python never caches the result, so every command paid it again. Compiling every module at
# install (uv's --compile-bytecode) took 15 s of a 27 s install, mostly modules no command loads.
# Instead the install imports what the commands import, in two processes at once, with writing
# on, and make's commands keep writing (unexport below) for the few modules imported later.
#
# The environment is made without pip (python -m venv spent 5.6 s installing and compiling it):
# the system pip puts uv in (ensurepip where that pip is missing or predates --python), and uv
# installs pip with the project.
unexport PYTHONDONTWRITEBYTECODE
WARM_HEAVY := tensorflow, keras, tensorflow_datasets, mlflow.tensorflow
WARM_REST := mlflow, mlflow.pyfunc, mlflow.store.tracking.sqlalchemy_store, mlflow.server, optuna, \
	pandas, scipy.linalg, sklearn.metrics, matplotlib.figure, matplotlib.backends.backend_agg, \
	pipelines.cli, pytest, xdist
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet uv || \
		{ $(BIN)/python -m ensurepip --default-pip && $(BIN)/python -m pip install --quiet uv; }
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[test]" pip
	export TF_CPP_MIN_LOG_LEVEL=3; $(BIN)/python -c "import $(WARM_HEAVY)" & heavy=$$!; \
	$(BIN)/python -c "import $(WARM_REST)" && wait $$heavy
	touch $@

run: install
	$(BIN)/deeparch run -e default

# Both cores: pytest-xdist runs one worker per CPU and hands each a whole module at a time, so a
# fixture built once per module (a store of runs, fitted models) is built once. Modules go out in
# collection order, which tests/conftest.py sets slowest first (xdist would order them by their
# number of tests, which says little about their time).
test: install
	$(BIN)/pytest -n auto --dist loadscope --no-loadscope-reorder

# Both cores, as make test: 90 slow tests took 11 min 53 s on two in a fresh clone of 7ea1391, on an
# idle machine (12 min 13 s at b7e5574, before models were logged without MLflow's serving check).
# Exit status 5 means "no test collected": not a failure while there are no slow tests.
test-slow: install
	$(BIN)/pytest -m slow -n auto --dist loadscope || [ $$? -eq 5 ]

# The docs site (docs/mkdocs.yml): strict, so a broken link, anchor or missing page fails the build.
export NO_MKDOCS_2_WARNING := 1
docs: $(VENV)/.docs-installed
	$(BIN)/mkdocs build -f docs/mkdocs.yml

docs-serve: $(VENV)/.docs-installed
	$(BIN)/mkdocs serve -f docs/mkdocs.yml -a 127.0.0.1:8000

$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[docs]"
	touch $@

# The published figures: every script of benchmarks/, writing benchmarks/results/*.json, from which
# the docs' tables are filled (hours on 2 cores). The quick mode (small sizes, one seed, results in
# a temporary folder) keeps every script working; CI runs it.
benchmarks: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks

benchmarks-quick: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks --quick

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[bench]"
	touch $@

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) exports site
