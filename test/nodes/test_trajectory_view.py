"""Chunks and requests read from their serialized bytes (raw subscriptions) say exactly what
rclpy's own deserialization says: the numpy reader for vla_edge's layout, rclpy for the rest."""
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from test.nodes.test_trajectory_cdr import CASES
from vla_edge.nodes.messages import chunk_to_trajectory
from vla_edge.nodes.trajectory_cdr import chunk_to_trajectory_cdr, decode_uniform, point_dtype
from vla_edge.nodes.trajectory_view import read_trajectory


def _same(a, b):
    assert (a.stamp_s, a.frame_id, a.joint_names, a.problem) == \
        (b.stamp_s, b.frame_id, b.joint_names, b.problem)
    np.testing.assert_array_equal(a.times_s, b.times_s)
    if a.problem is None:
        assert np.array_equal(a.actions(), b.actions())   # float64 bits preserved


def _message(horizon, names, frame_id, stamp, width=None):
    actions = np.random.default_rng(horizon).standard_normal((horizon, width or len(names)))
    msg = chunk_to_trajectory(actions, stamp, 50.0, names)
    msg.header.frame_id = frame_id
    return msg, actions


@pytest.mark.parametrize('horizon,names,frame_id,stamp', CASES)
def test_our_bytes_and_rclpys_bytes_read_as_the_message(horizon, names, frame_id, stamp):
    msg, actions = _message(horizon, names, frame_id, stamp)
    ours = chunk_to_trajectory_cdr(actions, stamp, 50.0, names, frame_id)
    rclpys = serialize_message(msg)   # rosidl points, uninitialised padding bytes
    assert decode_uniform(ours) is not None and decode_uniform(rclpys) is not None  # numpy path
    expected = read_trajectory(msg)
    _same(read_trajectory(ours), expected)
    _same(read_trajectory(rclpys), expected)
    assert np.array_equal(expected.actions(), actions)
    np.testing.assert_allclose(expected.times_s, np.arange(horizon) / 50.0, atol=1e-9)


def test_an_unnamed_chunk_and_an_empty_request_read_alike():
    msg, actions = _message(5, [], 'q', 2.0, width=2)
    _same(read_trajectory(chunk_to_trajectory_cdr(actions, 2.0, 50.0, [], 'q')),
          read_trajectory(msg))
    empty = chunk_to_trajectory(np.zeros((0, 3)), 4.5, 50.0, ['x', 'y', 'g'])
    empty.header.frame_id = 'r/1'
    view = read_trajectory(chunk_to_trajectory_cdr(np.zeros((0, 3)), 4.5, 50.0,
                                                   ['x', 'y', 'g'], 'r/1'))
    _same(view, read_trajectory(empty))
    assert view.n_points == 0 and view.problem == 'trajectory has no points'
    with pytest.raises(ValueError, match='no points'):
        view.actions()


def test_other_layouts_go_through_rclpy_with_the_same_result():
    """A foreign planner's chunk: velocities filled in, ragged widths, no positions."""
    with_velocities = JointTrajectory(joint_names=['a', 'b'], points=[
        JointTrajectoryPoint(positions=[1.0, 2.0], velocities=[0.5, 0.0]),
        JointTrajectoryPoint(positions=[3.0, 4.0])])
    ragged = JointTrajectory(joint_names=['a', 'b'], points=[
        JointTrajectoryPoint(positions=[1.0, 2.0]), JointTrajectoryPoint(positions=[3.0])])
    no_positions = JointTrajectory(points=[JointTrajectoryPoint(velocities=[1.0])])
    for msg in (with_velocities, ragged, no_positions):
        raw = serialize_message(msg)
        assert decode_uniform(raw) is None
        _same(read_trajectory(raw), read_trajectory(msg))
    assert np.array_equal(read_trajectory(serialize_message(with_velocities)).actions(),
                          [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match='inconsistent or zero widths'):
        read_trajectory(serialize_message(ragged)).actions()


@pytest.mark.parametrize('offset_name, declared', [('names', 0x1FFFFFFF), ('points', 0x1FFFFFFF),
                                                    ('positions', 0x1FFFFFFF),
                                                    ('frame_id', 0x7FFFFFFF)])
def test_counts_beyond_the_bytes_are_refused_without_rclpy(offset_name, declared, capfd):
    """Found by fuzzing: rclpy refuses such bytes but prints a line to stderr for each one,
    unthrottled, from every node on the topic. They never reach it now."""
    names = ['x', 'y']
    raw = bytearray(chunk_to_trajectory_cdr(np.ones((3, 2)), 1.0, 50.0, names, 'r'))
    body = 4   # the encapsulation header
    frame_id_at = body + 8
    names_at = frame_id_at + 4 + 2   # 'r' + NUL, then aligned to 4
    names_at += -(names_at - body) % 4
    points_at = names_at + 4 + 2 * (4 + 2) + 2   # two 1-letter names, each aligned to 4
    points_at += -(points_at - body) % 4
    at = {'frame_id': frame_id_at, 'names': names_at, 'points': points_at,
          'positions': points_at + 4}[offset_name]
    assert int.from_bytes(raw[at:at + 4], 'little') in (2, 3)   # found the right count
    raw[at:at + 4] = declared.to_bytes(4, 'little')
    with pytest.raises(ValueError, match='not a serialized JointTrajectory .*left'):
        read_trajectory(bytes(raw))
    assert capfd.readouterr().err == ''


@pytest.mark.parametrize('field', ['n_velocities', 'n_accelerations', 'n_effort'])
def test_a_point_announcing_other_fields_is_not_read_as_positions_only(field):
    """Each count is checked, not only inferred from the size: the last point's can announce
    values that would lie past the end."""
    names = ['x', 'y']
    raw = bytearray(chunk_to_trajectory_cdr(np.ones((3, 2)), 1.0, 50.0, names, 'r'))
    last = point_dtype(2, 0)
    offset = len(raw) - last.itemsize + last.fields[field][1]
    raw[offset:offset + 4] = (1).to_bytes(4, 'little')
    assert decode_uniform(bytes(raw)) is None


def test_truncated_or_foreign_bytes_are_a_value_error_never_a_wrong_chunk():
    raw = chunk_to_trajectory_cdr(np.ones((50, 3)), 1.0, 50.0, ['x', 'y', 'g'], 'r/1/2')
    refused_by_numpy = 0
    for cut in range(len(raw)):
        try:
            assert decode_uniform(raw[:cut]) is None
        except ValueError:   # no layout reads it: refused without asking rclpy ...
            refused_by_numpy += 1
            with pytest.raises(RuntimeError):   # ... which refuses it too (RMWError)
                deserialize_message(raw[:cut], JointTrajectory)
    assert refused_by_numpy > 0
    # rclpy then has the last word (it reads some cuts inside the last point)
    for cut in (0, 3, 9, 30, 60, 1000):
        with pytest.raises(ValueError, match='not a serialized JointTrajectory'):
            read_trajectory(raw[:cut])
    big_endian = b'\x00\x00' + raw[2:]   # another representation: not read by numpy
    assert decode_uniform(big_endian) is None
    _same(read_trajectory(raw + b'\x07' * 8), read_trajectory(raw))   # bytes after: ignored
