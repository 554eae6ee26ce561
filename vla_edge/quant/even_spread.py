"""At most N items of a sequence, evenly spread over it (first and last included).

Calibration feeds, bag frames and open-loop observations are all thinned this way, so every
part of an episode or recording (every denoising step, every phase of the task) stays in.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar('T')


def evenly_spread(items: Sequence[T], limit: int) -> list[T]:
    """All of `items` when there are at most `limit` (or `limit` <= 0), else `limit` of them at
    evenly spaced indices."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in idx]
