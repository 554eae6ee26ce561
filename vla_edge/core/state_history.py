"""Recent robot states by stamp, so the policy sees the image and the state of one instant.

The camera is slower than joint_states (30 Hz vs 50-1000 Hz), and a frame is some tens of
milliseconds old by the time a chunk is planned from it. Pairing that frame with the newest state
gives the policy a robot that is ahead of what its image shows. While the robot moves (async
execution) that mismatch is systematic, and the policy acts on it: it closes the gripper where
the image says the object is, while the state says it is already past it. An old but consistent
observation costs little, because the chunk is stamped with the frame's time (figures:
`benchmarks/observation_timing.py`, README "Image and state of one instant").
"""
from __future__ import annotations

from collections import deque

import numpy as np


class StateHistory:
    """The states of the last `horizon_s` seconds (at most `max_samples`), looked up by the time
    of a frame."""

    def __init__(self, horizon_s: float = 1.0, max_samples: int = 20_000):
        if not horizon_s > 0.0:
            raise ValueError(f'horizon_s must be > 0, got {horizon_s}')
        if max_samples < 1:
            raise ValueError(f'max_samples must be >= 1, got {max_samples}')
        self.horizon_s = horizon_s
        # Bounded by count too: a frozen clock (sim time before /clock, a paused sim) stamps
        # every state alike, and the time horizon alone would then keep them all.
        self._samples: deque[tuple[float, np.ndarray]] = deque(maxlen=max_samples)
        self.restarts = 0   # stamps that jumped back by more than the horizon: history dropped

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, stamp_s: float, state: np.ndarray) -> None:
        """Add a state. The same stamp as the newest replaces it; a slightly late one is put in
        its place; one older than the newest by more than the horizon means the clock restarted
        (sim reset, bag loop), and what came before belongs to another timeline."""
        samples = self._samples
        if samples and stamp_s <= samples[-1][0]:
            newest_s = samples[-1][0]
            if stamp_s == newest_s:
                samples[-1] = (stamp_s, state)
                return
            if newest_s - stamp_s > self.horizon_s:
                samples.clear()
                self.restarts += 1
            else:   # out of order (two publishers, an unstamped message placed at arrival)
                at = len(samples)
                while at > 0 and samples[at - 1][0] > stamp_s:
                    at -= 1
                if at > 0 and samples[at - 1][0] == stamp_s:
                    samples[at - 1] = (stamp_s, state)
                elif len(samples) < (samples.maxlen or 0):
                    samples.insert(at, (stamp_s, state))
                return
        samples.append((stamp_s, state))
        while stamp_s - samples[0][0] > self.horizon_s:
            samples.popleft()

    def newest(self) -> np.ndarray | None:
        """The state with the latest stamp (what `state_pairing: newest` plans from)."""
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
