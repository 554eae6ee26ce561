"""Where the files the package ships (config/, models/reference/) are, however it was installed.

A source checkout (or an editable install) has them next to the code. `colcon build` without
--symlink-install and a plain `pip install` copy them to <prefix>/share/vla_edge instead
(setup.py's data_files), so the code's own folder no longer has them.
"""
from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = 'vla_edge'
CHECKOUT = Path(__file__).resolve().parents[2]


def share_roots() -> list[Path]:
    """Candidate roots, best first: the checkout, the ament share folder, <sys.prefix>/share."""
    roots = [CHECKOUT]
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # not a ROS install, or the package is not in the ament index
        pass
    roots.append(Path(sys.prefix) / 'share' / PACKAGE)
    return roots


def package_path(*parts: str, roots: list[Path] | None = None) -> Path:
    """The first root that has `parts`; the checkout's path when none has (so an error names
    the place a developer would look)."""
    roots = share_roots() if roots is None else roots
    for root in roots:
        if root.joinpath(*parts).exists():
            return root.joinpath(*parts)
    return roots[0].joinpath(*parts)
