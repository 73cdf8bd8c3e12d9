# ExpiryTrack developer commands. Each target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
# Bytecode caches (__pycache__/, git-ignored) even where the environment turns them off: every
# test worker and every process a test starts (CLI, Dagster runs) would otherwise compile the
# package and re-rewrite the test modules' asserts from source (test collection 16 s -> 5 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test lint format validate dev sandbox bench clean

# ".[dev]" includes the "sandbox" extra: the demo and the tests run against the built-in sandbox.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## The main job end to end: sandbox (or real Upstox with UPSTOX_ACCESS_TOKEN) → Dagster runs → DuckDB.
demo: $(STAMP)
	$(BIN)/expirytrack demo

## Lint, validate the Dagster definitions, run every test in parallel. --dist worksteal: tests
## last from 0.01 s to 20 s, and an idle worker takes queued tests from a busy one (2 CPUs:
## 215 s against 232 s with xdist's default --dist load, 242 s against 278-307 s with loadgroup).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: $(STAMP)
	$(BIN)/dagster definitions validate -w workspace.yaml

## The Dagster UI and daemon (sensors, backfills, run queue) on the project's DAGSTER_HOME,
## and beside them the explorer (read-only pages over the data) on http://127.0.0.1:8050/.
dev: $(STAMP)
	$(BIN)/expirytrack explore --port 8050 & explorer=$$!; \
	trap 'kill $$explorer 2>/dev/null' EXIT INT TERM; \
	$(BIN)/expirytrack dev

## The Upstox sandbox alone, for poking at it with curl or a notebook.
sandbox: $(STAMP)
	$(BIN)/expirytrack sandbox --port 8765

## Benchmarks: rate-limit utilisation, collection throughput. Prints figures; asserts nothing.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
