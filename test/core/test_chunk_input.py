"""A received chunk conformed to the executor: columns by joint name, rows on its tick grid."""
import numpy as np
import pytest

from vla_edge.core.chunk_input import columns_by_name, onto_tick_grid, point_rate_hz

NAMES = ['vx', 'vy', 'grip']


def test_a_chunk_at_the_executors_rate_is_played_as_it_is():
    actions = np.random.default_rng(0).normal(size=(50, 3))
    out, resampled = onto_tick_grid(actions, np.arange(50) / 50.0, 50.0)
    assert out is actions and not resampled


def test_a_50hz_chunk_at_100hz_interpolates_between_points_and_keeps_its_duration():
    actions = np.stack([np.arange(50.0), np.zeros(50), np.where(np.arange(50) < 25, -1.0, 1.0)],
                       axis=1)
    out, resampled = onto_tick_grid(actions, np.arange(50) / 50.0, 100.0)
    assert resampled and out.shape == (100, 3)            # 1 s at either rate
    np.testing.assert_allclose(out[::2], actions)        # the planned points, at their times
    np.testing.assert_allclose(out[1:-1:2, 0], np.arange(49) + 0.5)   # halfway between them
    assert out[-1, 0] == 49.0                            # the last point holds its own period
    # The displacement a velocity chunk commands is kept (each tick lasts half as long).
    assert out[:, 0].sum() / 100.0 == pytest.approx(actions[:, 0].sum() / 50.0, rel=0.02)


def test_a_faster_executor_than_the_plan_and_a_slower_one():
    actions = np.arange(10.0)[:, None] * np.ones((1, 3))
    up, _ = onto_tick_grid(actions, np.arange(10) / 10.0, 50.0)     # 10 Hz model, 50 Hz loop
    assert up.shape == (50, 3)
    np.testing.assert_allclose(up[:46, 0], np.arange(46) / 5.0)
    down, _ = onto_tick_grid(actions, np.arange(10) / 10.0, 5.0)    # slower than the plan
    np.testing.assert_allclose(down[:, 0], [0.0, 2.0, 4.0, 6.0, 8.0])


def test_uneven_point_times_are_sampled_by_time_not_by_index():
    actions = np.array([[0.0], [1.0], [3.0]])
    out, resampled = onto_tick_grid(actions, [0.0, 0.02, 0.06], 50.0)
    assert resampled
    np.testing.assert_allclose(out[:, 0], [0.0, 1.0, 2.0, 3.0, 3.0])


@pytest.mark.parametrize('times, match', [
    ([0.0, 0.02, 0.02], 'must increase point by point; point 2'),
    ([0.0, 0.04, 0.02], 'must increase point by point; point 2 is at 0.02 s after 0.04 s'),
    ([-0.02, 0.0, 0.02], 'not negative'),
    ([0.0, float('nan'), 0.04], 'finite'),
    ([0.0, 0.02], '2 point times for 3 points'),
    ([0.0, 1000.0, 5000.0], 'spans 9000 s, 450000 ticks'),
])
def test_point_times_that_cannot_be_played_are_refused(times, match):
    with pytest.raises(ValueError, match=match):
        onto_tick_grid(np.zeros((3, 3)), times, 50.0)


def test_finite_values_that_overflow_when_resampled_are_refused():
    """Off-grid points near the float limit: interpolating between +1.7e308 and -1.7e308
    overflows to inf, which must never reach command_raw."""
    big = np.array([[1.7e308, 0.0, 0.0], [-1.7e308, 0.0, 0.0]] * 2)
    with pytest.raises(ValueError, match='overflows'):
        onto_tick_grid(big, [0.0, 0.03, 0.06, 0.09], 50.0)


def test_a_single_point_is_one_tick():
    out, resampled = onto_tick_grid(np.ones((1, 3)), [0.0], 100.0)
    assert out.shape == (1, 3) and not resampled


def test_columns_are_reordered_by_name():
    actions = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(columns_by_name(actions, ['grip', 'vx', 'vy'], NAMES),
                                  [[2.0, 3.0, 1.0]])
    assert columns_by_name(actions, NAMES, NAMES) is actions
    assert columns_by_name(actions, [], NAMES) is actions     # unnamed: the executor's order


@pytest.mark.parametrize('names, width, match', [
    (['vx', 'vy', 'elbow'], 3, r"joint_names \['vx', 'vy', 'elbow'\] are not the joints"),
    (['vx', 'vx', 'grip'], 3, 'are not the joints'),
    (['vx', 'vy'], 3, 'names 2 joints but has 3 values'),
    ([], 2, '2 values per point; this node commands 3 joints'),
])
def test_columns_that_do_not_match_the_joints_are_refused(names, width, match):
    with pytest.raises(ValueError, match=match):
        columns_by_name(np.zeros((4, width)), names, NAMES)


def test_point_rate():
    assert point_rate_hz([0.0, 0.1, 0.2]) == pytest.approx(10.0)
    assert point_rate_hz([0.0]) is None
