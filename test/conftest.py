"""Shared fixtures. The reference model must be set up (make setup); a test never skips instead."""
from __future__ import annotations

from pathlib import Path

import pytest

from vla_edge.core.model_dir import default_model_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def reference_model_dir() -> Path:
    path = default_model_dir()
    assert (path / 'instruction_encoder.onnx').is_file(), (
        f'{path} lacks instruction_encoder.onnx: run `make setup` (it is generated at setup)')
    return path


@pytest.fixture(scope='session')
def reference_runtime(reference_model_dir):
    from vla_edge.core.runtime import PolicyRuntime

    return PolicyRuntime(reference_model_dir)
