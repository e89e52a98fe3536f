# The two commands of the README: `make run` serves on the built-in simulator,
# `make test` runs the whole suite. Both create .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONASYNCIODEBUG := 1

.PHONY: run test test-python lint typecheck format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[providers]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	PYTHONASYNCIODEBUG= $(PY) -m server serve

test: lint typecheck test-python

test-python: $(VENV)/.installed-dev
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check server tests fuzz scripts
	$(VENV)/bin/ruff format --check server tests fuzz scripts

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format server tests
	$(VENV)/bin/ruff check --fix server tests

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
