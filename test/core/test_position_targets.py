import numpy as np
import pytest

from vla_edge.core.position_targets import velocity_chunk_to_positions


def test_positions_are_the_velocities_integrated_from_the_start():
    chunk = np.array([[0.5, 0.0, -1.0], [0.5, -0.5, -1.0], [0.0, 0.0, 1.0]])
    out = velocity_chunk_to_positions(chunk, [0.2, 0.3], distance_per_step=0.01)
    assert np.allclose(out[:, :2], [[0.205, 0.3], [0.21, 0.295], [0.21, 0.295]])
    assert np.array_equal(out[:, 2], chunk[:, 2])          # the gripper is left alone
    assert np.array_equal(chunk[0], [0.5, 0.0, -1.0])      # the input is not changed


def test_speed_is_capped_at_the_robots_top_speed():
    chunk = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    out = velocity_chunk_to_positions(chunk, [0.0, 0.0], distance_per_step=0.01)
    steps = np.linalg.norm(np.diff(np.vstack([[0.0, 0.0], out[:, :2]]), axis=0), axis=1)
    assert np.allclose(steps, 0.01)   # clipped per axis, then to norm 1


@pytest.mark.parametrize('chunk, start, step, match', [
    (np.zeros(3), [0, 0], 0.01, 'chunk'),
    (np.zeros((4, 3)), [0.0], 0.01, 'start'),
    (np.zeros((4, 3)), [0.0, np.nan], 0.01, 'start'),
    (np.zeros((4, 3)), [0.0, 0.0], 0.0, 'distance_per_step'),
])
def test_bad_arguments_are_refused(chunk, start, step, match):
    with pytest.raises(ValueError, match=match):
        velocity_chunk_to_positions(chunk, start, step)


def test_targets_stop_at_the_limits_and_come_back_from_there():
    chunk = np.array([[1.0, 0.0, 0.0]] * 3 + [[-1.0, 0.0, 0.0]])
    out = velocity_chunk_to_positions(chunk, [0.95, 0.5], 0.01, lower=[0.0, 0.0],
                                      upper=[0.97, 1.0])
    assert np.allclose(out[:, 0], [0.96, 0.97, 0.97, 0.96])   # not 0.98, 0.95 after the wall
    with pytest.raises(ValueError, match='lower/upper'):
        velocity_chunk_to_positions(chunk, [0.5, 0.5], 0.01, lower=[1.0, 0.0], upper=[0.0, 1.0])
