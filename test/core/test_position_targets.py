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
