# One Makefile for people and CI. Every target builds its own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install tools demo test test-fast test-e2e lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "lakegate needs Python 3.11 or newer (set PYTHON=python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Tools some tests run (promtool): installed when missing, else those tests skip.
tools:
	@sh scripts/ensure-tools

## The main job: the gateway with an emulated Databricks workspace on embedded SQLite.
demo: $(STAMP)
	$(BIN)/lakegate demo

## Everything CI runs: lint, types, layering, then the whole test suite.
test: lint tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Quick loop for development: no end-to-end tests, no lint.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" -q $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for script in tests/bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
