# The two commands of the README: `make run` serves on the built-in simulator,
# `make test` runs the whole suite. Both create .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONASYNCIODEBUG := 1

.PHONY: run test test-python test-js test-browser lint typecheck format clean nginx bench

# The JavaScript client (client_js/) and the browser tests, which drive Debian's Chromium.
JS := client_js
NODE_MODULES := $(JS)/node_modules/.installed
CHROMIUM ?= /usr/bin/chromium
# The cluster tests (tests/cluster/) start Debian's redis-server on a free loopback port.
REDIS_SERVER ?= /usr/bin/redis-server
export REDIS_SERVER

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

test: nginx lint typecheck test-python test-js test-browser

# The full benchmark (minutes; not part of `make test`): writes bench/results/latest.*
bench: $(VENV)/.installed-dev
	PYTHONASYNCIODEBUG= $(PY) bench/run.py

# tests/examples runs examples/express_app with its own node_modules (Express).
EXPRESS_EXAMPLE := examples/express_app/node_modules/.installed

test-python: $(VENV)/.installed-dev $(REDIS_SERVER) $(EXPRESS_EXAMPLE)
	$(PY) -m pytest

$(EXPRESS_EXAMPLE): examples/express_app/package.json examples/express_app/package-lock.json
	cd examples/express_app && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(NODE_MODULES): $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(REDIS_SERVER):
	apt-get update -qq
	RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server  # no service started

# Type-checks the JSDoc, checks the committed .d.ts files are current, runs the unit and
# integration tests (the latter start the server from .venv).
test-js: $(VENV)/.installed $(NODE_MODULES)
	cd $(JS) && rm -rf .types-check && npx --no-install tsc -p . --declarationDir .types-check \
		&& diff -r types .types-check && rm -rf .types-check \
		|| { echo 'client_js: JSDoc type errors above, or types/ is stale (run `npm run build:types` in client_js)'; exit 1; }
	cd $(JS) && node --test test/*.test.js

test-browser: $(VENV)/.installed $(NODE_MODULES) $(CHROMIUM)
	cd $(JS) && CHROMIUM_PATH=$(CHROMIUM) node --test --test-concurrency=1 test/browser/*.test.js

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check server tokenmux tests fuzz scripts bench examples
	$(VENV)/bin/ruff format --check server tokenmux tests fuzz scripts bench examples

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format server tokenmux tests bench examples
	$(VENV)/bin/ruff check --fix server tokenmux tests bench examples

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis $(JS)/node_modules test-artifacts \
		examples/express_app/node_modules
