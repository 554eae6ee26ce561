"""Flow-matching denoising with an optional committed prefix (forward-only real-time chunking).

Convention: x_tau = (1 - tau) * noise + tau * actions, tau from 0 (noise) to 1 (data); the action
expert returns the velocity dx/dtau. With a prefix of d committed actions, the first d rows of x are
replaced before every step by where the committed actions would sit at that tau, so the rest of the
chunk is denoised conditioned on them; at the end they equal the prefix exactly. Works with any
forward-only model (no gradients), hence with ONNX.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

VelocityFn = Callable[[np.ndarray, float], np.ndarray]


def denoise(velocity: VelocityFn, noise: np.ndarray, steps: int,
            prefix: np.ndarray | None = None) -> np.ndarray:
    """Euler-integrate from `noise` (B, H, A) to a normalized action chunk.

    `prefix` (B, d, A) or (d, A), already normalized, fixes the first d actions.
    """
    if steps < 1:
        raise ValueError(f'denoising steps must be >= 1, got {steps}')
    x = noise.astype(np.float32, copy=True)
    d = 0
    if prefix is not None:
        prefix = np.broadcast_to(prefix, (x.shape[0], *prefix.shape[-2:])).astype(np.float32)
        d = prefix.shape[1]
    for i in range(steps):
        tau = i / steps
        if d:
            x[:, :d] = (1.0 - tau) * noise[:, :d] + tau * prefix
        x = x + velocity(x, tau) / steps
    if d:
        x[:, :d] = prefix
    return x
