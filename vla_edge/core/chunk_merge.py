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
  keep the old velocity's offset instead, so it is meant for position targets. With `max_step`
  (the robot's top speed per tick) the fade never makes a tick's motion larger than that: where
  taking up the offset would speed the robot past it, the offset is taken up more slowly (what
  the position controller would do anyway, as a lag behind its target), so a switch is no rougher
  than the fastest motion the robot makes.
"""
from __future__ import annotations

import math
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
    max_step: float = 0.0   # offset_fade: top motion per tick the fade may cause (0: no limit)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f'merge strategy must be one of {STRATEGIES}, got {self.strategy!r}')
        if self.blend_steps < 1:
            raise ValueError(f'blend_steps must be >= 1, got {self.blend_steps}')
        if not 0.0 <= self.ensemble_m <= 10.0:
            raise ValueError(f'ensemble_m must be in [0, 10], got {self.ensemble_m}')
        if not 1 <= self.fade_steps <= 1000:
            raise ValueError(f'fade_steps must be in [1, 1000], got {self.fade_steps}')
        if not (math.isfinite(self.max_step) and self.max_step >= 0.0):
            raise ValueError(f'max_step must be a finite number >= 0, got {self.max_step}')

    @property
    def overlap_ticks(self) -> int:
        """Old actions that should still be queued when a new chunk lands, for merging."""
        return self.blend_steps if self.strategy in ('blend', 'temporal_ensemble',
                                                     'offset_fade') else 0


def merge_chunks(queued: np.ndarray, incoming: np.ndarray, cfg: MergeConfig,
                 motion_dims: int | None = None,
                 previous: np.ndarray | None = None) -> np.ndarray:
    """The actions to queue from now on (length of `incoming`). `motion_dims`: how many leading
    dims are motion (for `offset_fade`; None: all). `previous`: the action executed last, from
    which `offset_fade`'s `max_step` judges the first tick's step (None: not judged)."""
    incoming = np.asarray(incoming, dtype=np.float64)
    queued = np.asarray(queued, dtype=np.float64).reshape(-1, incoming.shape[-1]) \
        if len(queued) else np.zeros((0, incoming.shape[-1]))
    overlap = min(len(queued), len(incoming))
    if overlap == 0 or cfg.strategy in ('replace', 'prefix_inpaint'):
        return incoming.copy()
    # A queued value that is not finite (a fault behind the executor's input checks) is not
    # merged in: the new chunk's stands for it. Else offset_fade's offset, taken from the first
    # queued action, would carry a NaN into every later chunk.
    queued = queued[:overlap].copy()
    bad = ~np.isfinite(queued)
    queued[bad] = incoming[:overlap][bad]
    if previous is not None and not np.all(np.isfinite(previous)):
        previous = None
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
        offset = queued[0, :m] - incoming[0, :m]
        if cfg.max_step > 0.0:
            before = None if previous is None else np.asarray(previous, np.float64)[:m]
            out[:, :m] = incoming[:, :m] + _speed_limited_offsets(
                incoming[:, :m], offset, weight, cfg.max_step, before)
        else:
            out[:, :m] = incoming[:, :m] + weight[:, None] * offset
    return out


def _speed_limited_offsets(motion: np.ndarray, offset: np.ndarray, weight: np.ndarray,
                           max_step: float, previous: np.ndarray | None) -> np.ndarray:
    """(H, m) offsets added to `motion`: each tick's moves toward `weight[k] * offset` (the plain
    fade) as far as keeps that tick's step within max_step, or within the step the motion makes
    with the offset held (a chunk faster than max_step is not slowed by it either). Taking the
    offset up against the motion only ever shortens a step, so it is never held back. Runs on
    the executor's control thread at every chunk: the plain fade is taken at once when none of
    its steps is too fast (numpy, ~0.02 ms); only otherwise the ticks are walked (~0.6 ms)."""
    plain = weight[:, None] * offset
    if previous is not None:
        path = np.vstack([previous[None, :], motion + plain])
        # each tick's step with the offset held where the tick before left it
        held = np.vstack([motion[:1] + offset, motion[1:] + plain[:-1]])
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        own = np.linalg.norm(held - path[:-1], axis=1)
        if np.all(steps <= np.maximum(max_step, own) * (1 + 1e-12)):
            return plain
    rest = offset.copy()   # the offset still added, tick by tick
    out = np.empty_like(motion)
    last = previous
    for k in range(len(motion)):
        change = weight[k] * offset - rest            # toward the plain fade's schedule
        if last is not None and np.any(change):
            held = motion[k] + rest - last            # the step with the offset held
            limit = max(max_step, float(np.linalg.norm(held)))
            change *= _largest_fraction(held, change, limit)
        rest = rest + change
        out[k] = rest
        last = motion[k] + rest
    return out


def _largest_fraction(step: np.ndarray, change: np.ndarray, limit: float) -> float:
    """The largest s in [0, 1] with |step + s * change| <= limit, given |step| <= limit."""
    a = float(change @ change)
    if not (a > 0.0 and math.isfinite(a)):   # a change too small to square: take it whole
        return 1.0
    b = float(step @ change)
    c = float(step @ step) - limit * limit
    root = (-b + math.sqrt(max(b * b - a * c, 0.0))) / a
    return min(1.0, max(0.0, root))


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
