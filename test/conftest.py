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


@pytest.fixture
def edited_model(tmp_path, reference_model_dir):
    """edited_model(edit): a model folder like the reference one (ONNX files linked) whose
    manifest `edit(dict)` changed in place."""
    def make(edit):
        import yaml

        folder = tmp_path / 'model'
        folder.mkdir()
        for f in reference_model_dir.iterdir():
            if f.name != 'manifest.yaml':
                (folder / f.name).symlink_to(f.resolve())
        manifest = yaml.safe_load((reference_model_dir / 'manifest.yaml').read_text())
        edit(manifest)
        (folder / 'manifest.yaml').write_text(yaml.safe_dump(manifest))
        return folder

    return make
