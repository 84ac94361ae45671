# Two commands on a fresh clone: `make run` and `make test`. Everything else is set up on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup run test lint types unit integration infra-test bench monitor image image-context clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11+ is required)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python dependencies into $(VENV) (first time: a few minutes)"
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,infra,warehouse]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)
	@bash scripts/system-deps.sh
	@$(BIN)/adstream kafka install
	@$(BIN)/adstream connect install

run: setup
	$(BIN)/adstream kafka up
	@$(BIN)/adstream kafka status
	@bash scripts/run-local.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: $(STAMP)
	$(BIN)/mypy

test: setup lint types
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

infra-test: $(STAMP)
	$(BIN)/pytest tests/infra

bench: setup
	@command -v wrk >/dev/null || { echo "==> installing wrk"; apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.run --write bench/RESULTS.md
	$(BIN)/python -m bench.aggregator --write bench/RESULTS.md

# Prometheus on 127.0.0.1:9090 scraping what `make run` serves; `adstream monitor down` stops it.
monitor: setup
	$(BIN)/adstream monitor up

# The container image (Containerfile): `adstream serve` and `adstream aggregate`, non-root.
# ADSTREAM_BASE_IMAGE=docker.io/library/python:3.11-slim to build from the public image.
image: $(STAMP)
	@bash scripts/system-deps.sh
	PYTHON=$(BIN)/python bash scripts/build-image.sh

# The same image's build context (wheelhouse, RDS CA bundle, Containerfile) in build/image,
# where the CDK profiles' `clients.image` (source: asset) expects it: `cdk deploy` builds it.
# No container engine needed.
image-context: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/build-image.sh --context-only build/image

clean:
	-$(BIN)/adstream monitor down
	-$(BIN)/adstream kafka down
	rm -rf $(VENV) .adstream
