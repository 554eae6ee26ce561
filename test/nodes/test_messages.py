"""Chunk <-> JointTrajectory: point k at time_from_start = k / rate, stamp = observation time."""
import numpy as np
import pytest

from vla_edge.nodes.messages import (
    chunk_to_trajectory,
    point_spacing_s,
    stamp_to_s,
    trajectory_to_chunk,
)


@pytest.mark.parametrize('rate', [50.0, 30.0, 7.0])
def test_points_are_spaced_at_the_control_rate(rate):
    actions = np.arange(30, dtype=float).reshape(10, 3)
    msg = chunk_to_trajectory(actions, 12.25, rate, ['vx', 'vy', 'grip'])
    offsets = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    np.testing.assert_allclose(offsets, np.arange(10) / rate, atol=1e-9)
    assert point_spacing_s(msg) == pytest.approx(1.0 / rate, abs=1e-9)
    assert stamp_to_s(msg.header.stamp) == pytest.approx(12.25)
    np.testing.assert_array_equal(trajectory_to_chunk(msg), actions)


def test_a_single_point_has_no_spacing():
    assert point_spacing_s(chunk_to_trajectory(np.zeros((1, 3)), 0.0, 50.0, 'abc')) is None
