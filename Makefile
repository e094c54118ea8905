# Homepage Studio. `make demo` runs the app on the embedded demo store; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= data/demo
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

# Re-install only when the project definition changes. torch==2.13.0 goes in first so that pip
# takes the CPU build from this machine's disk instead of pulling a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	test -f $(DEMO_DIR)/items.csv || $(BIN)/homepage demo --out $(DEMO_DIR)
	$(BIN)/homepage baselines $(DEMO_DIR) --protocol loo --json $(DEMO_DIR)/baselines.json

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/baselines.py

clean:
	rm -rf $(VENV) data/demo tests/artifacts
