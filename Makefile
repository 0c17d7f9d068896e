# Entry points: `make run` (whole stack on this machine, nothing but python3.11 needed),
# `make test` (both databases; `make test-postgresql` or `make test-sqlite` for one),
# `make test-unit` (no PostgreSQL or Redis needed), `make bench`, `make lint`.
# The virtualenv is created and filled on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall only when a requirements file changes.
STAMP := $(VENV)/.requirements-dev.stamp
# Optional: a torch index, e.g. https://download.pytorch.org/whl/cpu to skip the CUDA wheels.
TORCH_INDEX_URL ?=
PYTEST_ARGS ?=
# What the SQLite pass runs: the suites that go through the API and the workers.
SQLITE_TESTS ?= tests/api tests/integration tests/sdk tests/browser


# Quiet by default: `make run VERBOSE=1` shows pip's output and every process's info logs.
VERBOSE ?=
PIP_FLAGS := $(if $(VERBOSE),,--quiet --disable-pip-version-check)

.PHONY: run test test-postgresql test-sqlite test-unit bench fuzz lint deps system-deps clean-venv console

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip

$(STAMP): requirements/dev.txt requirements/api.txt requirements/worker.txt requirements/constraints.txt | $(PY)
	@echo "Installing the requirements into $(VENV) (the first time takes a few minutes)"
	@if [ -n "$(TORCH_INDEX_URL)" ]; then \
		$(PY) -m pip install $(PIP_FLAGS) --index-url "$(TORCH_INDEX_URL)" "$$(grep '^torch==' requirements/worker.txt)"; \
	fi
	@$(PY) -m pip install $(PIP_FLAGS) -r requirements/dev.txt
	@touch $@

deps: $(STAMP)

run: deps
	@$(PY) scripts/dev_stack.py $(if $(VERBOSE),--verbose)

system-deps:
	sh scripts/install_system_deps.sh

# The whole suite on PostgreSQL, then the API and integration suites on SQLite (what `make run`
# uses); the second pass runs even when the first failed, and either failing fails the target.
TEST_POSTGRESQL = $(PY) -m pytest --database=postgresql $(PYTEST_ARGS)
TEST_SQLITE = $(PY) -m pytest --database=sqlite $(SQLITE_TESTS) $(PYTEST_ARGS)

test: deps system-deps
	@status=0; \
	echo "$(TEST_POSTGRESQL)"; $(TEST_POSTGRESQL) || status=1; \
	echo "$(TEST_SQLITE)"; $(TEST_SQLITE) || status=1; \
	exit $$status

test-postgresql: deps system-deps
	$(TEST_POSTGRESQL)

test-sqlite: deps system-deps
	$(TEST_SQLITE)

# Tests marked `services` (tests/conftest.py marks them) need the real PostgreSQL and Redis.
test-unit: deps system-deps
	$(PY) -m pytest -m "not services" $(PYTEST_ARGS)

bench: deps
	$(PY) bench/api_submit.py

# schemathesis over /openapi.json against gunicorn on a temporary PostgreSQL database (needs the
# test PostgreSQL and Redis); FUZZ_ARGS e.g. "--max-examples 100 --seed 1".
FUZZ_ARGS ?=
fuzz: deps
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

# The web console's libraries: npm installs the pinned packages of console/package-lock.json and
# console/build.mjs copies their files into api/console/static/vendor/ (committed;
# tests/unit/test_console_build.py checks it). The console's own modules in api/console/static/ are served as written.
console:
	cd console && npm ci --no-audit --no-fund && node build.mjs

# ruff is pinned in requirements/constraints.txt and configured in pyproject.toml.
lint: deps
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
