# Quick start: `make demo` (main job on embedded data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow

.PHONY: install test test-all demo clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=20

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "slow or not slow"

demo: $(STAMP)
	$(BIN)/python -m zoo.cli demo

clean:
	rm -rf $(VENV) build *.egg-info runs reports
