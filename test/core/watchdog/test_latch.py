import numpy as np
import pytest

from vla_edge.core.watchdog import VetoLatch, safe_command


def test_veto_latches_and_stays_latched_without_reset():
    latch = VetoLatch(auto_clear_after_s=0.0)
    assert not latch.update(0.0, [])
    assert latch.update(1.0, ['command.finite: nan'])
    for t in np.arange(1.1, 100.0, 0.5):    # healthy for ages: manual reset only
        assert latch.update(float(t), [])
    assert latch.reasons == ('command.finite: nan',) and latch.tripped_at_s == 1.0


def test_reasons_accumulate_until_cleared_one_per_source():
    latch = VetoLatch()
    latch.update(0.0, ['frame.stale: 0.6 s old'])
    for k in range(100):
        latch.update(0.1 + k, [f'frame.stale: {0.7 + k} s old', 'liveness.x: no x'])
    assert latch.reasons == ('frame.stale: 0.6 s old', 'liveness.x: no x')
    assert latch.trips == 1


def test_reset_refused_while_a_fault_is_present():
    latch = VetoLatch()
    latch.update(0.0, ['frame.dark: 100% dark'])
    result = latch.reset(1.0, ['frame.dark: 100% dark'])
    assert not result.accepted and 'frame.dark' in result.reason and latch.latched


def test_reset_accepted_when_healthy():
    latch = VetoLatch()
    latch.update(0.0, ['x'])
    result = latch.reset(1.0, [])
    assert result.accepted and 'x' in result.reason and not latch.latched
    assert latch.reset(2.0, []).reason == 'not latched'


def test_auto_clear_after_continuous_healthy_time():
    latch = VetoLatch(auto_clear_after_s=2.0)
    latch.update(0.0, ['x'])
    assert latch.update(0.5, [])          # healthy from 0.5
    assert latch.update(2.4, [])
    assert not latch.update(2.5, [])      # 2.0 s healthy
    assert latch.trips == 1


def test_a_fault_restarts_the_healthy_time():
    latch = VetoLatch(auto_clear_after_s=2.0)
    latch.update(0.0, ['x'])
    latch.update(0.5, [])
    latch.update(2.0, ['x again'])        # before 2 s of health
    assert latch.update(4.0, [])          # healthy from 4.0 only
    assert latch.update(5.9, [])
    assert not latch.update(6.0, [])


def test_refused_reset_also_restarts_the_healthy_time():
    latch = VetoLatch(auto_clear_after_s=1.0)
    latch.update(0.0, ['x'])
    latch.update(0.5, [])
    latch.reset(1.0, ['x'])
    assert latch.update(1.6, []) and latch.healthy_for_s(1.6) == 0.0


def test_negative_auto_clear_is_refused():
    with pytest.raises(ValueError, match='auto_clear_after_s'):
        VetoLatch(-1.0)


def test_safe_command_zero_velocity_keeps_positions():
    held = safe_command(np.array([0.7, -0.3, 1.0]), 'zero_velocity', [0, 1])
    np.testing.assert_array_equal(held, [0.0, 0.0, 1.0])


def test_safe_command_last_repeats_the_last_safe_command():
    last = np.array([0.7, -0.3, 1.0])
    held = safe_command(last, 'last', [0, 1])
    np.testing.assert_array_equal(held, last)
    held[0] = 5.0
    assert last[0] == 0.7                 # a copy


def test_safe_command_before_any_safe_command():
    np.testing.assert_array_equal(
        safe_command(None, 'last', [0, 1], fallback=np.array([0.4, 0.4, -1.0])), [0, 0, -1.0])
    assert safe_command(None, 'zero_velocity', [0, 1]) is None
    assert safe_command(None, 'zero_velocity', [0, 1], np.array([0.0, 0.0, np.nan])) is None
    with pytest.raises(ValueError, match='hold_mode'):
        safe_command(np.zeros(3), 'brake', [0])


def test_safe_command_state_holds_the_measured_position_where_it_is_known():
    last = np.array([0.52, 0.40, 1.0])      # the last target sent, ahead of the robot
    measured = np.array([0.50, 0.41, np.nan])
    np.testing.assert_array_equal(safe_command(last, 'state', [], measured), [0.50, 0.41, 1.0])
    # velocity dims are zeroed as in zero_velocity
    np.testing.assert_array_equal(safe_command(last, 'state', [0], measured), [0.0, 0.41, 1.0])
