"""Chunk <-> JointTrajectory: point k at time_from_start = k / rate, stamp = observation time."""
import numpy as np
import pytest

from vla_edge.nodes.messages import (
    chunk_to_trajectory,
    point_times_s,
    stamp_to_s,
    trajectory_to_chunk,
)


@pytest.mark.parametrize('rate', [50.0, 30.0, 7.0])
def test_points_are_spaced_at_the_control_rate(rate):
    actions = np.arange(30, dtype=float).reshape(10, 3)
    msg = chunk_to_trajectory(actions, 12.25, rate, ['vx', 'vy', 'grip'])
    np.testing.assert_allclose(point_times_s(msg), np.arange(10) / rate, atol=1e-9)
    assert stamp_to_s(msg.header.stamp) == pytest.approx(12.25)
    np.testing.assert_array_equal(trajectory_to_chunk(msg), actions)


def test_point_times_read_whole_seconds_and_nanoseconds():
    msg = chunk_to_trajectory(np.zeros((3, 3)), 0.0, 0.8, 'abc')   # 0, 1.25 s, 2.5 s
    assert point_times_s(msg) == pytest.approx([0.0, 1.25, 2.5], abs=1e-9)
