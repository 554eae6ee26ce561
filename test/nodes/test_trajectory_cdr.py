"""The hand-serialized JointTrajectory is the message rclpy would put on the wire."""
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from trajectory_msgs.msg import JointTrajectory

from vla_edge.nodes.messages import chunk_to_trajectory, s_to_stamp, trajectory_to_chunk
from vla_edge.nodes.trajectory_cdr import chunk_to_trajectory_cdr

CASES = [  # (horizon, joint names, frame_id, stamp): paddings of every length before the points
    (50, ['x', 'y', 'gripper'], 'vla_edge/request/3/7', 1795518833.123456789),
    (50, ['x', 'y', 'gripper'], '', 5.5),
    (1, ['a'], 'ab', 0.0),
    (7, ['j1', 'joint_2', 'c', 'dd', 'e'], 'abc', 12.999999999),
    (3, ['xx', 'y'], 'abcd', 3.25),
    (20, ['abc'], 'abcdefg', 1e-9),
    (5, ['x', 'y', 'gripper'], '', 59.99999999999999),   # rounds up into the next second
]


@pytest.mark.parametrize('horizon,names,frame_id,stamp', CASES)
def test_deserializes_to_the_message_chunk_to_trajectory_builds(horizon, names, frame_id,
                                                                stamp):
    actions = np.random.default_rng(horizon).standard_normal((horizon, len(names)))
    expected = chunk_to_trajectory(actions, stamp, 50.0, names)
    expected.header.frame_id = frame_id
    got = deserialize_message(chunk_to_trajectory_cdr(actions, stamp, 50.0, names, frame_id),
                              JointTrajectory)
    assert got == expected                      # every field, every point
    assert np.array_equal(trajectory_to_chunk(got), actions)   # float64 bits preserved


def test_bytes_equal_rclpy_serialization_where_no_padding_is_needed():
    """rclpy leaves its padding bytes uninitialised, so compare a layout with none: 4-byte
    strings (with their NUL) and the first positions at offset 56, already 8-aligned."""
    actions = np.arange(12.0).reshape(4, 3)
    msg = chunk_to_trajectory(actions, 7.25, 50.0, ['abc', 'def', 'ghi'])
    msg.header.frame_id = 'abcdefg'
    ours = chunk_to_trajectory_cdr(actions, 7.25, 50.0, ['abc', 'def', 'ghi'], 'abcdefg')
    assert serialize_message(msg)[:len(ours)] == ours


def test_an_unnamed_chunk_keeps_its_columns_in_order():
    """A model without action_names: the executor takes the columns by position."""
    actions = np.arange(15.0).reshape(5, 3)
    got = deserialize_message(chunk_to_trajectory_cdr(actions, 1.0, 50.0, [], 'r'),
                              JointTrajectory)
    assert list(got.joint_names) == [] and np.array_equal(trajectory_to_chunk(got), actions)


def test_a_chunk_without_joints_or_with_the_wrong_names_is_refused():
    with pytest.raises(ValueError, match='joints >= 1'):
        chunk_to_trajectory_cdr(np.zeros((5, 0)), 0.0, 50.0, [])
    with pytest.raises(ValueError, match='2 joint names for 3 values'):
        chunk_to_trajectory_cdr(np.zeros((5, 3)), 0.0, 50.0, ['x', 'y'])


@pytest.mark.parametrize('seconds,expected', [(59.99999999999999, (60, 0)), (1.5, (1, 500000000)),
                                              (-0.25, (-1, 750000000)), (7.0, (7, 0))])
def test_stamps_round_to_the_nanosecond_and_carry_into_the_seconds(seconds, expected):
    stamp = s_to_stamp(seconds)
    assert (stamp.sec, stamp.nanosec) == expected
