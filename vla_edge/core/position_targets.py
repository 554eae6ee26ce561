"""A velocity action chunk as position targets, for a robot driven by a position controller.

The reference model acts in normalized velocities (its demonstrations are velocity commands). A
position-controlled robot (an arm's `forward_position_controller`, or the sim with
`command_interface: position`) takes where to be at each tick instead. The chunk's positions are
its velocities integrated from the position the chunk was planned from, the speed capped at the
robot's maximum, so every target is reachable one tick after the previous one.

Why a robot would want this: the executor then holds a position (not a velocity) when the queue
runs dry, and a chunk switch shows up as a position step, which a merge can spread out
(`offset_fade` in vla_edge/core/chunk_merge.py, docs/measurements.md "Position targets").
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def velocity_chunk_to_positions(chunk: np.ndarray, start: Sequence[float] | np.ndarray,
                                distance_per_step: float,
                                motion_dims: Sequence[int] = (0, 1),
                                lower: Sequence[float] | None = None,
                                upper: Sequence[float] | None = None) -> np.ndarray:
    """Chunk (H, A) of normalized velocities -> the same chunk with `motion_dims` replaced by the
    positions they reach, one control step each, from `start` (one value per motion dim).

    Each velocity is clipped to [-1, 1] per dim and then to norm 1 (the robot's top speed
    `distance_per_step` per step); the other dims (a gripper) are kept as they are. With
    `lower`/`upper` (one per motion dim) every step stops at the limits, as the robot does at a
    wall: a chunk that keeps pushing does not leave its targets running on past it, and the
    step back starts at the wall."""
    actions = np.asarray(chunk, dtype=np.float64)
    dims = list(motion_dims)
    origin = np.asarray(start, dtype=np.float64).reshape(-1)
    if actions.ndim != 2 or not dims or max(dims) >= actions.shape[1] or min(dims) < 0:
        raise ValueError(f'need a (H, A) chunk with motion dims {dims} inside A, got shape '
                         f'{actions.shape}')
    if origin.shape != (len(dims),) or not np.all(np.isfinite(origin)):
        raise ValueError(f'start must be {len(dims)} finite numbers, got {start!r}')
    if not distance_per_step > 0.0:
        raise ValueError(f'distance_per_step must be > 0, got {distance_per_step}')
    velocity = np.clip(actions[:, dims], -1.0, 1.0)
    velocity /= np.maximum(np.linalg.norm(velocity, axis=1, keepdims=True), 1.0)
    out = actions.copy()
    if lower is None and upper is None:
        out[:, dims] = origin + np.cumsum(velocity * distance_per_step, axis=0)
        return out
    lo = np.full(len(dims), -np.inf) if lower is None else np.asarray(lower, np.float64)
    hi = np.full(len(dims), np.inf) if upper is None else np.asarray(upper, np.float64)
    if lo.shape != (len(dims),) or hi.shape != (len(dims),) or np.any(lo > hi):
        raise ValueError(f'lower/upper must be {len(dims)} values each, lower <= upper; got '
                         f'{lower!r}, {upper!r}')
    position = np.clip(origin, lo, hi)
    for k, step in enumerate(velocity * distance_per_step):   # H steps: cheap
        position = np.clip(position + step, lo, hi)
        out[k, dims] = position
    return out
