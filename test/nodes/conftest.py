"""ROS test isolation: every test gets its own rclpy Context on its own DDS domain."""
import itertools
import os
from typing import NamedTuple

import numpy as np
import pytest

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
_domains = itertools.count(100 + os.getpid() % 50 * 2)


@pytest.fixture
def ros_context():
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=next(_domains) % 230)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


class PlanCall(NamedTuple):
    visual: object   # the VisualEmbedding planned from
    state: object    # the state vector
    seed: int | None
    prefix: object = None   # the committed prefix, at the model's rate


@pytest.fixture
def planned(reference_runtime, monkeypatch):
    """Every chunk the runtime plans, as a PlanCall (the real plan runs)."""
    seen: list[PlanCall] = []
    real = reference_runtime.plan_chunk

    def spy(visual, instruction, state, seed=None, **kw):
        seen.append(PlanCall(visual, np.array(state), seed, kw.get('prefix')))
        return real(visual, instruction, state, seed=seed, **kw)

    monkeypatch.setattr(reference_runtime, 'plan_chunk', spy)
    return seen
