"""The policy's state vector from JointState fields: joints by name, whatever their order;
a missing joint or a NaN/inf value is a ValueError that says which."""
import math

import numpy as np
import pytest

from vla_edge.core.joint_state import state_vector


def test_joints_are_taken_by_name_positions_then_velocities():
    state = state_vector(['gripper', 'y', 'x'], position=[0.7, 0.2, 0.1],
                         velocity=[9.0, -0.5, 0.3])
    assert state.dtype == np.float32
    np.testing.assert_array_equal(state, np.array([0.1, 0.2, 0.7, 0.3, -0.5], np.float32))


def test_custom_joint_lists_and_extra_joints_in_the_message():
    state = state_vector(('a', 'b', 'c', 'unused'), (1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0),
                         position_joints=('c',), velocity_joints=('a', 'b'))
    np.testing.assert_array_equal(state, [3.0, 5.0, 6.0])


def test_a_missing_joint_is_named():
    names = ['x', 'gripper']
    with pytest.raises(ValueError, match="joint_states lacks 'y'") as err:
        state_vector(names, [0.1, 0.7], [0.0, 0.0])
    assert str(names) in str(err.value)    # and what the message has


@pytest.mark.parametrize('position, velocity, match', [
    ([0.1, 0.2], [0.0, 0.0, 0.0], "position has 2 values for 3 names, so none for 'gripper'"),
    ([0.1, 0.2, 0.7], [], "velocity has 0 values for 3 names, so none for 'x'"),
])
def test_a_field_shorter_than_the_names_is_named_as_such(position, velocity, match):
    """The joint is named; its value is what is missing (it used to say 'lacks x')."""
    with pytest.raises(ValueError, match=match):
        state_vector(['x', 'y', 'gripper'], position, velocity)


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_nan_or_inf_is_rejected(bad):
    with pytest.raises(ValueError, match='NaN/inf'):
        state_vector(['x', 'y', 'gripper'], [0.1, bad, 0.7], [0.0, 0.0, 0.0])


def test_a_joint_named_twice_is_rejected():
    """Which of the two values is the joint's? Neither is taken."""
    with pytest.raises(ValueError, match=r"names \['x'\] more than once"):
        state_vector(['x', 'y', 'gripper', 'x'], [0.5, 0.5, 1.0, 9.0], [0.0] * 4)


def test_numpy_fields_as_decoded_from_a_bag():
    state = state_vector(['x', 'y', 'gripper'], np.array([0.1, 0.2, 0.7]),
                         np.array([0.3, -0.5, 0.0]))
    np.testing.assert_allclose(state, [0.1, 0.2, 0.7, 0.3, -0.5], rtol=1e-6)


def test_a_message_naming_thousands_of_joints_is_named_in_one_line():
    names = [f'j{i}' for i in range(10_000)]
    with pytest.raises(ValueError, match=r"lacks 'x' \(has \['j0', .*characters\)\)") as err:
        state_vector(names, position=[0.0] * 10_000, velocity=[0.0] * 10_000)
    assert len(str(err.value)) < 200


def test_a_joint_named_twice_among_many_is_found_in_linear_time():
    # names.count per name took 3.4 s for 20000 names (session 14 review); with a Counter the
    # 50000 here take milliseconds. The bound is generous: it fails only on quadratic work.
    import time

    names = [f'j{i}' for i in range(50_000)] + ['j7']
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"names \['j7'\] more than once"):
        state_vector(names, position=[0.0] * len(names), velocity=[0.0] * len(names))
    assert time.perf_counter() - start < 2.0
