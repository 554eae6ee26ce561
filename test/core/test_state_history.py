"""The state paired with a frame is the one stamped nearest to it: a real sample, the offset
reported, the history bounded in time and restarted when the clock goes back."""
import numpy as np
import pytest

from vla_edge.core.state_history import StateHistory


def filled(stamps, horizon_s=1.0):
    h = StateHistory(horizon_s)
    for t in stamps:
        h.add(t, np.array([t], np.float32))
    return h


@pytest.mark.parametrize('frame_s, expected_s', [
    (10.00, 10.00),    # exact
    (10.012, 10.02),   # nearer the later sample
    (10.008, 10.00),   # nearer the earlier one
    (10.01, 10.00),    # a tie goes to the earlier sample
    (10.5, 10.08),     # newer than every state: the newest
    (9.0, 10.00),      # older than every state: the oldest
])
def test_the_nearest_sample_and_its_offset(frame_s, expected_s):
    h = filled([10.00, 10.02, 10.04, 10.06, 10.08])
    state, offset = h.at(frame_s)
    assert state[0] == pytest.approx(expected_s)
    assert offset == pytest.approx(expected_s - frame_s)


def test_a_sample_is_returned_as_it_was_not_interpolated():
    h = StateHistory()
    h.add(1.0, np.array([0.0, 1.0]))    # gripper open
    h.add(1.1, np.array([0.1, 0.4]))    # closed on an object
    state, _ = h.at(1.04)
    np.testing.assert_array_equal(state, [0.0, 1.0])


def test_empty_history_has_no_state():
    h = StateHistory()
    assert h.at(1.0) is None and h.newest() is None and len(h) == 0


def test_only_the_horizon_is_kept():
    h = filled(np.arange(0.0, 3.0, 0.1).round(3), horizon_s=0.5)
    assert len(h) == 6                      # 2.4 .. 2.9
    state, offset = h.at(0.0)
    assert state[0] == pytest.approx(2.4) and offset == pytest.approx(2.4)
    assert h.newest()[0] == pytest.approx(2.9)


def test_a_clock_that_goes_back_by_more_than_the_horizon_starts_a_new_history():
    h = filled([5.0, 5.1, 5.2])
    h.add(0.5, np.array([0.5], np.float32))    # sim or bag restarted
    assert h.restarts == 1 and len(h) == 1
    assert h.at(5.1)[0][0] == pytest.approx(0.5)


def test_a_slightly_late_state_is_put_in_its_place():
    """Out of order by a few ms (an unstamped message placed at arrival, two publishers): the
    history is kept, in stamp order."""
    h = filled([1.000, 1.001, 1.002, 1.004])
    h.add(1.003, np.array([7.0], np.float32))
    assert h.restarts == 0 and len(h) == 5
    assert h.at(1.003)[0][0] == 7.0
    assert h.at(1.0032)[0][0] == 7.0
    assert h.newest()[0] == pytest.approx(1.004)


def test_a_frozen_clock_does_not_grow_the_history():
    """Sim time before /clock (or a paused sim) stamps every state alike: the newest wins."""
    h = StateHistory()
    for k in range(1000):
        h.add(0.0, np.array([k], np.float32))
    assert len(h) == 1 and h.newest()[0] == 999


def test_the_history_is_bounded_by_count_too():
    h = StateHistory(horizon_s=10.0, max_samples=100)
    for k in range(1000):
        h.add(k * 1e-3, np.array([k], np.float32))
    assert len(h) == 100 and h.at(0.0)[0][0] == 900


@pytest.mark.parametrize('horizon', [0.0, -1.0, float('nan')])
def test_a_horizon_must_be_positive(horizon):
    with pytest.raises(ValueError, match='horizon_s must be > 0'):
        StateHistory(horizon)
