"""How a newly arrived chunk joins what is still queued from the previous one.

Both arguments are aligned on the current tick: `queued[k]` and `incoming[k]` are the actions
for tick now + k (the incoming chunk's past actions are already dropped). Strategies:
- `replace`: the new chunk wins outright (jumps if the two disagree).
- `temporal_ensemble`: ACT-style weighted average over the whole overlap, i.e. every queued action
  of the old chunk (`blend_steps` does not cap it; it only sets how many old actions the request
  trigger keeps queued for merging, as for blend). The older prediction weighs 1, the newer
  exp(-m). Applied at every switch, older predictions decay geometrically. With two chunks it
  leaves a step of 1/(1+exp(-m)) of their disagreement where the old chunk's actions end.
- `blend`: cross-fade from the old to the new over `blend_steps` ticks.
- `prefix_inpaint`: the new chunk was denoised with the old chunk's committed next actions fixed
  (real-time chunking, forward-only), so it already continues the old one; it replaces the queue.
- `offset_fade` (for position targets): the new chunk's motion from its first tick, shifted by
  where the old chunk stands at the switch, the shift fading out over `fade_steps` ticks. The
  robot follows the fresher plan's motion at once and takes up its correction of the position
  gradually; the other dims (a gripper) are blended as by `blend`. On velocity commands it would
  keep the old velocity's offset instead, so it is meant for position targets.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STRATEGIES = ('replace', 'temporal_ensemble', 'blend', 'prefix_inpaint', 'offset_fade')


@dataclass(frozen=True)
class MergeConfig:
    """Strategy and its parameters; see the module docstring."""

    strategy: str = 'blend'
    blend_steps: int = 5
    ensemble_m: float = 0.5
    fade_steps: int = 40

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f'merge strategy must be one of {STRATEGIES}, got {self.strategy!r}')
        if self.blend_steps < 1:
            raise ValueError(f'blend_steps must be >= 1, got {self.blend_steps}')
        if not 0.0 <= self.ensemble_m <= 10.0:
            raise ValueError(f'ensemble_m must be in [0, 10], got {self.ensemble_m}')
        if not 1 <= self.fade_steps <= 1000:
            raise ValueError(f'fade_steps must be in [1, 1000], got {self.fade_steps}')

    @property
    def overlap_ticks(self) -> int:
        """Old actions that should still be queued when a new chunk lands, for merging."""
        return self.blend_steps if self.strategy in ('blend', 'temporal_ensemble',
                                                     'offset_fade') else 0


def merge_chunks(queued: np.ndarray, incoming: np.ndarray, cfg: MergeConfig,
                 motion_dims: int | None = None) -> np.ndarray:
    """The actions to queue from now on (length of `incoming`). `motion_dims`: how many leading
    dims are motion (for `offset_fade`; None: all)."""
    incoming = np.asarray(incoming, dtype=np.float64)
    queued = np.asarray(queued, dtype=np.float64).reshape(-1, incoming.shape[-1]) \
        if len(queued) else np.zeros((0, incoming.shape[-1]))
    overlap = min(len(queued), len(incoming))
    if overlap == 0 or cfg.strategy in ('replace', 'prefix_inpaint'):
        return incoming.copy()
    out = incoming.copy()
    if cfg.strategy == 'temporal_ensemble':
        w_new = np.exp(-cfg.ensemble_m)
        out[:overlap] = (queued[:overlap] + w_new * incoming[:overlap]) / (1.0 + w_new)
    else:  # blend (offset_fade: the dims after the motion ones)
        n = min(cfg.blend_steps, overlap)
        alpha = (np.arange(1, n + 1) / (n + 1))[:, None]
        out[:n] = (1.0 - alpha) * queued[:n] + alpha * incoming[:n]
    if cfg.strategy == 'offset_fade':
        m = incoming.shape[-1] if motion_dims is None else motion_dims
        weight = np.clip(1.0 - np.arange(1, len(incoming) + 1) / (cfg.fade_steps + 1), 0.0, 1.0)
        out[:, :m] = incoming[:, :m] + weight[:, None] * (queued[0, :m] - incoming[0, :m])
    return out


def discontinuity_ratio(switch_steps: Sequence[float] | np.ndarray,
                        inside_steps: Sequence[float] | np.ndarray) -> float:
    """max |delta action| at chunk switches / median |delta action| inside chunks.

    1.0 means the roughest switch is no rougher than a typical step within a chunk; NaN when there
    was no switch (or no step inside a chunk) to compare.
    """
    if not len(switch_steps) or not len(inside_steps):
        return float('nan')
    return float(np.max(switch_steps) / max(float(np.median(inside_steps)), 1e-6))


def switch_p95_ratio(switch_steps: Sequence[float] | np.ndarray,
                     inside_steps: Sequence[float] | np.ndarray) -> float:
    """p95 |delta action| at switches / p95 |delta action| inside chunks.

    A companion to `discontinuity_ratio`, which sets a maximum against a median: a policy's own
    steps have a tail, so even switches that are exactly like inside steps score the max of N
    inside steps over their median (about 4 for the reference policy with ~100 switches). This
    one compares like with like: 1.0 means switches are as smooth as the policy's own steps."""
    if not len(switch_steps) or not len(inside_steps):
        return float('nan')
    return float(np.percentile(switch_steps, 95) / max(float(np.percentile(inside_steps, 95)),
                                                        1e-6))


def switch_discontinuity_ratio(trace: np.ndarray, switch_ticks: list[int]) -> float:
    """`discontinuity_ratio` of an executed action stream (T, A) whose chunks took over at
    `switch_ticks`."""
    trace = np.asarray(trace, dtype=np.float64)
    steps = np.linalg.norm(np.diff(trace, axis=0), axis=1)   # steps[t-1] = |a_t - a_{t-1}|
    at_switch = {t - 1 for t in switch_ticks if 1 <= t < len(trace)}
    return discontinuity_ratio([steps[i] for i in sorted(at_switch)],
                               [s for i, s in enumerate(steps) if i not in at_switch])
