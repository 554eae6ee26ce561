"""Actions indexed by absolute control tick, so a late chunk loses exactly its past actions.

A chunk computed from an observation at tick t0 holds the actions for ticks t0, t0+1, ...; when it
is installed at tick `now`, the ones for ticks before `now` are already in the past and are dropped
(counted), never executed late.
"""
from __future__ import annotations

import numpy as np


class ActionQueue:
    """The queued actions of the current chunk, addressed by control tick."""

    def __init__(self) -> None:
        self._start_tick = 0
        self._actions: np.ndarray | None = None

    def install(self, actions: np.ndarray, observation_tick: int, now_tick: int) -> int:
        """Replace what is queued from `now_tick` on; return how many actions were in the past."""
        actions = np.asarray(actions)
        if actions.ndim != 2 or len(actions) == 0:
            raise ValueError(f'a chunk must be (H, action_dim) with H > 0, got {actions.shape}')
        if now_tick < observation_tick:
            raise ValueError(f'chunk observed at tick {observation_tick} installed earlier, at '
                             f'tick {now_tick}')
        dropped = min(now_tick - observation_tick, len(actions))
        self._actions = actions[dropped:]
        self._start_tick = now_tick
        return dropped

    def remaining(self, tick: int) -> int:
        """Actions still queued for ticks >= `tick`."""
        if self._actions is None:
            return 0
        return max(0, self._start_tick + len(self._actions) - max(tick, self._start_tick))

    def action_at(self, tick: int) -> np.ndarray | None:
        """The action for `tick`, or None when the queue has run dry (a stall)."""
        if self._actions is None:
            return None
        k = tick - self._start_tick
        if 0 <= k < len(self._actions):
            return self._actions[k]
        return None

    def upcoming(self, tick: int, count: int) -> np.ndarray:
        """Up to `count` queued actions from `tick` on (the committed prefix for the next chunk)."""
        if self._actions is None:
            return np.zeros((0, 0))
        k = max(0, tick - self._start_tick)
        return self._actions[k:k + count]
