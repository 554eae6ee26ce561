"""The |Δaction| of the most recent control ticks, each marked as a chunk switch or a step inside a
chunk: what the chunk-switch smoothness figures are computed from.

A fixed-size ring buffer, because an executor on a robot runs for hours without a reset. Kept
in growing lists, these steps cost ~6 MB and a ~7 ms diagnostics publish on the control thread
after one hour at 50 Hz, and both keep growing (docs/measurements.md, "ROS 2 pipeline
benchmarks"). Here memory and the cost of a diagnostics publish stay the same after a day.
"""
from __future__ import annotations

import numpy as np


class StepWindow:
    """The last `size` steps in tick order; older steps are overwritten."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f'a step window holds at least 1 step, got {size}')
        self._steps = np.zeros(size)
        self._switch = np.zeros(size, dtype=bool)
        self._count = 0   # steps added since creation; the newest is at (count - 1) % size

    @property
    def size(self) -> int:
        return len(self._steps)

    def __len__(self) -> int:
        return min(self._count, self.size)

    def add(self, step: float, switched: bool) -> None:
        i = self._count % self.size
        self._steps[i] = step
        self._switch[i] = switched
        self._count += 1

    def _ordered(self, values: np.ndarray) -> np.ndarray:
        if self._count <= self.size:
            return values[:self._count]
        start = self._count % self.size
        return np.concatenate((values[start:], values[:start]))

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """(switch steps, inside steps) in storage order: for statistics that ignore order
        (max, median), without the two copies that put them in tick order."""
        n = len(self)
        steps, switch = self._steps[:n], self._switch[:n]
        return steps[switch], steps[~switch]

    @property
    def switch_steps(self) -> np.ndarray:
        """Steps at chunk switches, oldest first (a copy)."""
        return self._ordered(self._steps)[self._ordered(self._switch)]

    @property
    def inside_steps(self) -> np.ndarray:
        """Steps inside chunks, oldest first (a copy)."""
        return self._ordered(self._steps)[~self._ordered(self._switch)]
