# motion-text developer commands. `make test` and `make demo` install what they need themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install test demo lexical-demo bench bench-quick lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is installed first so that the CPU build is used (a bare `torch` requirement may resolve to a CUDA build).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest tests

demo: install
	$(BIN)/python -m motion_text.demo tmr

lexical-demo: install
	$(BIN)/python -m motion_text.demo lexical

bench: install
	$(BIN)/python -m benchmarks.run

bench-quick: install
	$(BIN)/python -m benchmarks.run --quick

lint: install
	$(BIN)/ruff check motion_text tests benchmarks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache lightning_logs
