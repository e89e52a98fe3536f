# The two commands of the README: `make run` serves on the built-in simulator,
# `make test` runs the whole suite. Both create .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONASYNCIODEBUG := 1

.PHONY: run test test-python lint typecheck format clean nginx bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[providers]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# tests/deploy runs deploy/nginx.conf for real; Debian's nginx is enough (needs root once).
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

run: $(VENV)/.installed
	PYTHONASYNCIODEBUG= $(PY) -m server serve

test: nginx lint typecheck test-python

# The full benchmark (minutes; not part of `make test`): writes bench/results/latest.*
bench: $(VENV)/.installed-dev
	PYTHONASYNCIODEBUG= $(PY) bench/run.py

test-python: $(VENV)/.installed-dev
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check server tests bench
	$(VENV)/bin/ruff format --check server tests bench

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format server tests bench
	$(VENV)/bin/ruff check --fix server tests bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
