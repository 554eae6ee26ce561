"""Where the default (reference) model folder is, in a source checkout or an installed package."""
from __future__ import annotations

import os
from pathlib import Path

from vla_edge.core.package_share import package_path

ENV_VAR = 'VLA_EDGE_MODEL_DIR'


def default_model_dir() -> Path:
    """$VLA_EDGE_MODEL_DIR, else the packaged models/reference (checkout or share folder)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return package_path('models', 'reference')
