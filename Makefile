# Homepage Studio. `make demo` runs the app on the embedded demo store; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= data/demo
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test bench clean

# Re-install only when the project definition changes. torch==2.13.0 goes in first so that pip
# takes the CPU build from this machine's disk instead of pulling a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,scale]'
	touch $(STAMP)

install: $(STAMP) chromium

# Debian's chromium drives the browser tests (Playwright is pointed at it; never `playwright install`).
# Where apt-get is missing or fails, the install goes on and the browser tests skip.
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium ) \
	    || echo "warning: could not install chromium; the browser tests will skip"; \
	fi

# Generate the demo store, evaluate the baselines and train a model once, then serve the homepage.
demo: install
	test -f $(DEMO_DIR)/items.csv || $(BIN)/homepage demo --out $(DEMO_DIR)
	test -f $(DEMO_DIR)/baselines.json || $(BIN)/homepage baselines $(DEMO_DIR) --protocol loo --json $(DEMO_DIR)/baselines.json
	ls $(DEMO_DIR)/models/*/manifest.json >/dev/null 2>&1 || $(BIN)/homepage train $(DEMO_DIR) --max-minutes 2.5
	$(BIN)/homepage app $(DEMO_DIR) $(APP_ARGS)

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/baselines.py

clean:
	rm -rf $(VENV) data/demo tests/artifacts
