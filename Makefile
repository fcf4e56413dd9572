# ScaiEcho: one venv in .venv/, created on first use by every target that needs it.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= appliance,gui,test
PYTHON ?= python3
export HF_HUB_OFFLINE := 1
export PYANNOTE_METRICS_ENABLED := false

.PHONY: install up test lint bench desktop clean

$(STAMP): pyproject.toml packaging/install-system-deps.sh
	bash packaging/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	if $(BIN)/python -c 'import torch' 2>/dev/null; then $(BIN)/python -m models.campplus; fi
	touch $(STAMP)

## install: set up .venv (and the Debian packages, when run as root)
install: $(STAMP)

## up: run the appliance in the foreground with its embedded defaults (ARGS="--nodes 4" etc.)
up: $(STAMP)
	$(BIN)/scaiecho-appliance up $(ARGS)

## test: the whole suite: unit, integration (real Redis/nodes/SQLite), e2e (real processes)
test: $(STAMP)
	bash packaging/install-system-deps.sh --test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff (lint + format check) and mypy
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: speed and accuracy tables (benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.enroll
	$(BIN)/python -m benchmarks.erasure
	$(BIN)/python -m benchmarks.operations
	$(BIN)/python -m benchmarks.duplicates
	$(BIN)/python -m benchmarks.faults

## desktop: the PyInstaller bundle of the desktop client in dist/scaiecho-desktop/ (no torch)
desktop:
	bash packaging/build-desktop.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info dist
