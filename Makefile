# The two commands a newcomer needs:
#   make demo   install skycheck, start a local Kubernetes control plane, check, fix, re-check
#   make test   install everything and run lint, types and every test (CI runs exactly this)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint unit bench-smoke docs clean lab inventory

$(BIN)/skycheck: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/skycheck

demo: install
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/gen_docs.py --check
	$(BIN)/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"

test: lint
	bash scripts/install-system-deps.sh
	$(BIN)/python -m tests.cluster build
	$(BIN)/python -m tests.skypilot build
	$(BIN)/python -m tests.skypilot venvs
	$(BIN)/pytest -q

# The whole SkyPilot closed loop: every case, every fatal check dropped in turn, more random
# worlds, for every proven SkyPilot version (CI runs a subset inside `make test`).
lab: install
	bash scripts/install-system-deps.sh
	$(BIN)/python -m tests.cluster build
	$(BIN)/python -m tests.skypilot build
	$(BIN)/python -m tests.skypilot venvs
	SKYCHECK_LAB_FULL=1 $(BIN)/pytest -q -m skypilot tests/skypilot

# Regenerate rules/observed/ (the inventory) for every proven SkyPilot version.
inventory: install
	bash scripts/install-system-deps.sh
	$(BIN)/python -m tests.skypilot inventory

unit: install
	$(BIN)/pytest -q -m "not cluster and not skypilot and not packaging"

bench-smoke: install
	$(BIN)/python benchmarks/run.py --smoke

docs: install
	$(BIN)/python scripts/gen_docs.py
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
