# `make demo` — set up .venv, train a small comparison on the embedded digits data, print the table.
# `make test` — install the dev extras and run the test suite (CI runs this through .ci/run).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := results/demo
# Every registered method, vanilla first, two seeds each.
DEMO_METHODS ?= all
DEMO_SEEDS   ?= 0,1
DEMO_EPOCHS  ?= 6

.PHONY: install dev demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps 'torchattacks>=3.5'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: install
	rm -rf $(DEMO)
	MSDA_RESULTS=$(DEMO) $(BIN)/msda train --recipe digits-vanilla --method $(DEMO_METHODS) \
		--seeds $(DEMO_SEEDS) --epochs $(DEMO_EPOCHS)
	MSDA_RESULTS=$(DEMO) $(BIN)/msda report --rows method --cols arch --metric top1

test: dev
	$(BIN)/python -m pytest

bench: dev
	$(BIN)/python benchmarks/bench_loop.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
