# `make demo` — set up .venv, train a small comparison on the embedded digits data, print the table.
# `make test` — install the dev extras and run the test suite (CI runs this through .ci/run).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# MLPs on the digits over three seeds, 40 epochs: long enough for Vanilla to overfit, so Mixup's
# regularization shows in the table. The runs go to results/msda.db tagged `demo` (a second
# `make demo` replaces them), so `msda runs list` and `msda report` show them afterwards.
DEMO_METHODS ?= vanilla,mixup,cutmix,dmixup
DEMO_ARCH    ?= mlp
DEMO_SEEDS   ?= 0,1,2
DEMO_EPOCHS  ?= 40
# torchattacks (msda robust --attack autoattack; the tests' reference attacks) goes in without its dependencies:
# every release since 3.4 pins requests~=2.25.1, which it never imports and which would downgrade requests
TORCHATTACKS := 'torchattacks>=3.5'

.PHONY: install dev demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps $(TORCHATTACKS)
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(TORCHATTACKS)
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: install
	$(BIN)/msda runs rm --where tag=demo --yes
	$(BIN)/msda train --recipe digits-vanilla --method $(DEMO_METHODS) --arch $(DEMO_ARCH) \
		--seeds $(DEMO_SEEDS) --epochs $(DEMO_EPOCHS) --tag demo
	$(BIN)/msda report --rows method --cols arch --metric top1 --where tag=demo

test: dev
	$(BIN)/python -m pytest

bench: dev
	$(BIN)/python benchmarks/bench_loop.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
