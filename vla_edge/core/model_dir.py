"""Where the default (reference) model folder is, in a source checkout or an installed package."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = 'VLA_EDGE_MODEL_DIR'


def default_model_dir() -> Path:
    """$VLA_EDGE_MODEL_DIR, else the checkout's models/reference, else the ament share folder."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    checkout = Path(__file__).resolve().parents[2] / 'models' / 'reference'
    if checkout.is_dir():
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory('vla_edge')) / 'models' / 'reference'
    except Exception:  # not a ROS install, or the package is not in the ament index
        return checkout
