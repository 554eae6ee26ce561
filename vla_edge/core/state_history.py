"""Recent robot states by stamp, so the policy sees the image and the state of one instant.

The camera is slower than joint_states (30 Hz vs 50-1000 Hz), and a frame is some tens of
milliseconds old by the time a chunk is planned from it. Pairing that frame with the newest state
gives the policy a robot that is ahead of what its image shows. While the robot moves (async
execution) that mismatch is systematic, and the policy acts on it: on the virtual clock, a
state two control ticks (40 ms) ahead of its image took async success at 300 ms latency from 100%
to 90% and grasps that closed on nothing from 4 to 88 in 30 episodes; the same two-tick age
with image and state of one instant left both unchanged (README "Image and state of one
instant"). The chunk is stamped with the frame's time, so the state must be the frame's time too.
"""
from __future__ import annotations

from collections import deque

import numpy as np


class StateHistory:
    """The states of the last `horizon_s` seconds, looked up by the time of a frame."""

    def __init__(self, horizon_s: float = 1.0):
        if not horizon_s > 0.0:
            raise ValueError(f'horizon_s must be > 0, got {horizon_s}')
        self.horizon_s = horizon_s
        self._samples: deque[tuple[float, np.ndarray]] = deque()
        self.restarts = 0   # stamps that went backwards (a sim or bag restarted): history dropped

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, stamp_s: float, state: np.ndarray) -> None:
        """Append a state. A stamp older than the newest one means the clock restarted (sim reset,
        bag loop): what came before belongs to another timeline and is dropped."""
        if self._samples and stamp_s < self._samples[-1][0]:
            self._samples.clear()
            self.restarts += 1
        self._samples.append((stamp_s, state))
        while stamp_s - self._samples[0][0] > self.horizon_s:
            self._samples.popleft()

    def newest(self) -> np.ndarray | None:
        return self._samples[-1][1] if self._samples else None

    def at(self, stamp_s: float) -> tuple[np.ndarray, float] | None:
        """(the state stamped nearest to `stamp_s`, its stamp minus `stamp_s`), or None if empty.

        A real sample, not an interpolation: a gripper's aperture between two readings is a value
        the policy never saw. A tie goes to the earlier sample. A frame older than the whole
        history gets the oldest state, newer than it the newest; the offset says how far off.
        """
        if not self._samples:
            return None
        best_stamp, best = self._samples[-1]
        for sample_stamp, state in reversed(self._samples):   # frames are recent: few steps
            if abs(sample_stamp - stamp_s) <= abs(best_stamp - stamp_s):
                best_stamp, best = sample_stamp, state
            if sample_stamp < stamp_s:
                break   # everything further back is further away
        return best, best_stamp - stamp_s
