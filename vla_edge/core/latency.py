"""Inference latency as the scheduler should see it: a high percentile over a recent window.

A mean under-estimates the tail (chunks arrive late), a max is poisoned forever by one cold
start; a windowed percentile that also skips the first calls (graph optimisation, cache warm-up)
is neither.
"""
from __future__ import annotations

from collections import deque

import numpy as np


class LatencyTracker:
    """Recent latencies; `estimate_s` is their configured percentile."""

    def __init__(self, window: int = 50, percentile: float = 95.0, discard_first: int = 1):
        if window < 1:
            raise ValueError(f'latency window must be >= 1, got {window}')
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f'latency percentile must be in (0, 100], got {percentile}')
        if discard_first < 0:
            raise ValueError(f'discard_first must be >= 0, got {discard_first}')
        self.percentile = percentile
        self.samples: deque[float] = deque(maxlen=window)
        self._to_discard = discard_first
        self._cold_max_s = 0.0
        self._estimate_s: float | None = None   # the percentile, until the next sample
        self.count = 0

    def add(self, seconds: float) -> None:
        if not np.isfinite(seconds) or seconds < 0:
            raise ValueError(f'latency must be a finite, non-negative number, got {seconds}')
        self.count += 1
        if self._to_discard > 0:
            self._to_discard -= 1
            self._cold_max_s = max(self._cold_max_s, float(seconds))
            return
        self.samples.append(float(seconds))
        self._estimate_s = None

    def estimate_s(self, default: float = 0.0) -> float:
        """The configured percentile of the window.

        Before any sample counts, the cold-start samples (an upper bound) stand in, or `default`
        when there are none. Kept until the next sample: the executor asks on every control
        tick, a percentile costs ~30 us at the default window and ~200 us at 10000 samples, and
        a new sample comes only once per chunk.
        """
        if not self.samples:
            return max(default, self._cold_max_s)
        if self._estimate_s is None:
            self._estimate_s = float(np.percentile(np.fromiter(self.samples, float),
                                                   self.percentile))
        return self._estimate_s
