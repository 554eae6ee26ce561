"""Flow-matching denoising with an optional committed prefix (real-time chunking, forward-only).

Convention: x_tau = (1 - tau) * noise + tau * actions, tau from 0 (noise) to 1 (data); the action
expert returns the velocity dx/dtau. The velocity function is given each action's flow time,
(B, H). A prefix of d committed actions is kept in one of two ways, chosen by the model:
- `clean` (a model trained with committed prefixes, training-time real-time chunking): the first d
  rows of x are the committed actions themselves at tau = 1 at every step, as in training, and the
  model denoises the rest as their continuation.
- `inpaint` (any model): before every step the first d rows are replaced by where the committed
  actions would sit at the current tau, so the rest is pulled along by attention only; the model
  never saw a prefix, and its own continuation can jump where the prefix ends.
Either way the result's first d rows equal the prefix exactly. No gradients, so ONNX works.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

VelocityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PREFIX_MODES = ('clean', 'inpaint')


def denoise(velocity: VelocityFn, noise: np.ndarray, steps: int,
            prefix: np.ndarray | None = None, prefix_mode: str = 'inpaint') -> np.ndarray:
    """Euler-integrate from `noise` (B, H, A) to a normalized action chunk.

    `prefix` (B, d, A) or (d, A), already normalized, fixes the first d actions; `prefix_mode`
    says how the model is shown them (module docstring).
    """
    if steps < 1:
        raise ValueError(f'denoising steps must be >= 1, got {steps}')
    if prefix_mode not in PREFIX_MODES:
        raise ValueError(f'prefix_mode must be one of {PREFIX_MODES}, got {prefix_mode!r}')
    x = noise.astype(np.float32, copy=True)
    tau = np.empty(x.shape[:2], np.float32)
    d = 0
    if prefix is not None:
        prefix = np.broadcast_to(prefix, (x.shape[0], *prefix.shape[-2:])).astype(np.float32)
        d = prefix.shape[1]
    for i in range(steps):
        t = i / steps
        tau[:] = t
        if d and prefix_mode == 'clean':
            x[:, :d] = prefix
            tau[:, :d] = 1.0
        elif d:
            x[:, :d] = (1.0 - t) * noise[:, :d] + t * prefix
        x = x + velocity(x, tau) / steps
    if d:
        x[:, :d] = prefix
    return x
