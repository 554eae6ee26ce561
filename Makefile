# Two commands: `make demo` and `make test`. Both build the same .venv (idempotent: a stamp file
# skips the install when nothing it depends on changed), then run.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL := models/reference
PIP := $(BIN)/python -m pip --quiet

.PHONY: setup demo test lint bench clean

setup: $(STAMP) $(MODEL)/instruction_encoder.onnx

$(STAMP): setup.py requirements/ros-wheels.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | sed '/^WARNING: Location/d'
	@# torch first, pinned: it comes from this machine's disk (CPU build), not a multi-GB CUDA build.
	$(PIP) install torch==2.13.0 2>&1 | sed '/^WARNING: Location/d'
	$(PIP) install -r requirements/ros-wheels.txt 2>&1 | sed '/^WARNING: Location/d'
	$(PIP) install -e '.[train,viz,replay,dev]' 2>&1 | sed '/^WARNING: Location/d'
	$(BIN)/python -c "import torch, rclpy, onnxruntime, cv2, tokenizers; assert torch.__version__.startswith('2.13.0')"
	touch $(STAMP)

# The instruction encoder (all-MiniLM-L6-v2) is derived from an installed package, so it is
# exported at setup instead of being committed (it is ~90 MB); its sha256 is in the manifest.
$(MODEL)/instruction_encoder.onnx: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/vla-edge export-instruction-encoder $(MODEL)

# The sim closed loop over real DDS in real time (async vs sync, at this machine's speed and on an
# emulated slower board), then the virtual-clock evaluation on 100 held-out episodes.
# e.g. `make demo DEMO_ARGS="--model models/reference-mixed"` for a quantized model folder.
DEMO_ARGS ?=
demo: setup
	$(BIN)/vla-edge demo $(DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/stage_latency.py

clean:
	rm -rf $(VENV) build *.egg-info
