"""Clean simulator frames shared by the watchdog tests (rendered once per session)."""
from __future__ import annotations

import numpy as np
import pytest

from vla_edge.sim.env import TeaTableEnv

SEEDS = range(1_000_000, 1_000_010)


@pytest.fixture(scope='session')
def clean_frames() -> list[np.ndarray]:
    """Two frames from each of 10 held-out seeds: varied brightness, tint and noise."""
    env = TeaTableEnv()
    frames = []
    for seed in SEEDS:
        env.reset(seed)
        frames.append(env.observe().image)
        for _ in range(20):
            env.step(env.expert_action())
        frames.append(env.observe().image)
    return frames


@pytest.fixture
def sim_env() -> TeaTableEnv:
    env = TeaTableEnv()
    env.reset(SEEDS[0])
    return env
