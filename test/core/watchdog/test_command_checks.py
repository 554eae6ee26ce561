import numpy as np
import pytest

from vla_edge.core.watchdog import CommandGate, CommandGateConfig, Level

DT = 1 / 50


def gate(**overrides):
    return CommandGate(CommandGateConfig(**overrides))


def by_name(decision):
    return {r.name: r for r in decision.results}


@pytest.mark.parametrize('bad', [[np.nan, 0.0, 0.0], [0.0, np.inf, 0.0], [0.0, 0.0, -np.inf]])
def test_non_finite_is_always_vetoed(bad):
    g = gate(bounds_mode='off', acceleration_mode='off')
    d = g.check(bad, 0.0)
    assert d.veto and d.command is None
    assert d.results[0].name == 'command.finite' and d.results[0].level == Level.ERROR
    assert g.last_sent is None          # nothing was sent


@pytest.mark.parametrize('bad', [[0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [[0.0, 0.0, 0.0]], 'abc'])
def test_wrong_length_or_shape_is_vetoed(bad):
    d = gate().check(bad, 0.0)
    assert d.veto and d.command is None and d.reasons


def test_good_command_passes_unchanged_and_is_remembered():
    g = gate()
    d = g.check([0.1, -0.1, 1.0], 0.0)
    assert not d.veto and not d.clamped and d.reasons == ()
    np.testing.assert_array_equal(d.command, [0.1, -0.1, 1.0])
    np.testing.assert_array_equal(g.last_sent, [0.1, -0.1, 1.0])


def test_small_bound_excess_is_clamped_large_is_vetoed():
    g = gate(acceleration_mode='off', jerk_mode='off')
    d = g.check([1.08, 0.0, 0.0], 0.0)
    assert not d.veto and d.clamped
    np.testing.assert_allclose(d.command, [1.0, 0.0, 0.0])
    assert by_name(d)['command.bounds'].level == Level.WARN
    d = g.check([0.0, 0.0, 1.4], DT)          # the gripper command may overshoot +-1
    assert not d.veto and not d.clamped
    d = g.check([0.0, 0.0, 9.0], DT)          # 6 half-ranges out: a broken policy
    assert d.veto and by_name(d)['command.bounds'].level == Level.ERROR
    d = g.check([0.0, 0.0, 1e300], DT)        # the reason stays one readable line
    reason = by_name(d)['command.bounds'].reason
    assert d.veto and len(reason) < 150 and '6.67e+299 half-ranges' in reason, reason


def test_bounds_in_veto_mode():
    d = gate(bounds_mode='veto').check([1.08, 0.0, 0.0], 0.0)
    assert d.veto and 'veto' in by_name(d)['command.bounds'].reason


def test_acceleration_of_velocity_dims_clamp_vs_veto():
    # from rest, 0.5 in one tick is 25 /s^2 > 10: clamp to 10 * dt = 0.2
    d = gate(jerk_mode='off').check([0.5, -0.5, 0.0], 0.0)
    assert d.clamped
    np.testing.assert_allclose(d.command, [0.2, -0.2, 0.0])
    r = by_name(d)['command.acceleration']
    assert r.level == Level.WARN and r.values['value'] == pytest.approx(25.0)
    d = gate(jerk_mode='off', acceleration_mode='veto').check([0.5, -0.5, 0.0], 0.0)
    assert d.veto and by_name(d)['command.acceleration'].level == Level.ERROR


def test_velocity_limit_of_a_position_dim_uses_differences():
    cfg = dict(command_dim=2, velocity_dims=(), value_min=(-10.0, -10.0),
               value_max=(10.0, 10.0), max_velocity=(1.0, 0.0), max_acceleration=(0.0, 0.0),
               max_jerk=(0.0, 0.0), max_state_step=(0.0, 0.0), max_switch_jump=(0.0, 0.0))
    g = gate(**cfg)
    assert g.check([1.0, 1.0], 0.0).command is not None   # first: no history for positions
    d = g.check([1.1, 5.0], DT)          # dim 0 moved 5 /s > 1; dim 1 has no limit
    np.testing.assert_allclose(d.command, [1.0 + DT, 5.0])
    assert by_name(d)['command.velocity'].level == Level.WARN
    strict = gate(**cfg, velocity_mode='veto')
    strict.check([1.0, 1.0], 0.0)
    assert strict.check([1.1, 1.0], DT).veto


def test_velocity_limit_of_a_velocity_dim_is_its_value():
    d = gate(max_velocity=(0.5, 0.0, 0.0), acceleration_mode='off',
             jerk_mode='off').check([0.8, 0.8, 0.0], 0.0)
    np.testing.assert_allclose(d.command, [0.5, 0.8, 0.0])


def test_jerk_clamp_vs_veto():
    kw = dict(max_acceleration=(100.0, 100.0, 0.0), max_jerk=(100.0, 100.0, 0.0))
    g = gate(**kw)
    for k in range(3):
        g.check([0.0, 0.0, 0.0], k * DT)
    # acceleration 0 -> 50 /s^2 in one tick: jerk 2500 /s^3 > 100
    d = g.check([1.0, 0.0, 0.0], 3 * DT)
    assert d.clamped and by_name(d)['command.jerk'].values['value'] == pytest.approx(2500.0)
    assert d.command[0] == pytest.approx(100.0 * DT * DT)     # jerk * dt^2
    g = gate(**kw, jerk_mode='veto')
    for k in range(3):
        g.check([0.0, 0.0, 0.0], k * DT)
    assert g.check([1.0, 0.0, 0.0], 3 * DT).veto


def test_smooth_ramp_within_limits_passes_untouched():
    g = gate()
    for k in range(50):
        v = min(1.0, 0.05 * k)          # 2.5 /s^2, constant then zero acceleration
        d = g.check([v, 0.0, 1.0], k * DT)
        assert not d.veto and not d.clamped, d.reasons


def test_jump_at_chunk_switch_only_when_flagged():
    g = gate(acceleration_mode='off', jerk_mode='off')
    g.check([0.0, 0.0, -1.0], 0.0)
    d = g.check([0.6, 0.0, 1.0], DT)               # no switch: only other limits apply
    assert by_name(d)['command.switch_jump'].level == Level.OK
    d = g.check([0.0, 0.0, -1.0], 2 * DT, chunk_switch=True)   # 0.6 -> 0: jump 0.6 > 0.5
    assert d.clamped and by_name(d)['command.switch_jump'].level == Level.WARN
    np.testing.assert_allclose(d.command, [0.1, 0.0, -1.0])     # grip has no jump limit
    g = gate(acceleration_mode='off', jerk_mode='off', switch_jump_mode='veto')
    g.check([0.0, 0.0, 0.0], 0.0)
    assert g.check([0.9, 0.0, 0.0], DT, chunk_switch=True).veto


def _position_gate():
    return gate(command_dim=2, velocity_dims=(), value_min=(0.0, 0.0), value_max=(1.0, 1.0),
                max_velocity=(1.2, 1.2), max_acceleration=(0.0, 0.0), max_jerk=(0.0, 0.0),
                max_state_step=(0.15, 0.15), max_switch_jump=(0.0, 0.0),
                state_step_mode='clamp')   # as config/position_targets.yaml


def test_a_position_hold_where_the_robot_is_is_never_rate_limited_away_from_it():
    """The robot was left behind its targets (paused, blocked): a hold where it is measured
    passes as it is, and the next targets are limited from there, not from the old targets."""
    g = _position_gate()
    robot = np.array([0.40, 0.50])
    for k in range(3):
        g.check([0.50 + 0.01 * k, 0.50], k * DT, measured_state=robot)
    d = g.check(robot, 3 * DT, measured_state=robot)   # 0.12 back: 6 u/s as a difference
    np.testing.assert_array_equal(d.command, robot)
    assert not d.clamped
    d = g.check([0.43, 0.50], 4 * DT, measured_state=robot)   # 1.5 u/s from the hold
    np.testing.assert_allclose(d.command, [0.40 + 1.2 * DT, 0.50])


def test_a_robot_that_jumped_is_not_pulled_back_toward_its_old_targets():
    """A sim reset teleports the robot (or a person moves it): the executor holds where it now
    is, and the targets after that hold are limited from there, not from the old ones."""
    g = _position_gate()
    for k in range(3):
        g.check([0.20 + 0.01 * k, 0.20], k * DT, measured_state=[0.20 + 0.01 * k, 0.20])
    teleported = np.array([0.80, 0.70])
    d = g.check(teleported, 3 * DT, measured_state=teleported)        # the executor's hold
    np.testing.assert_array_equal(d.command, teleported)
    d = g.check([0.81, 0.70], 4 * DT, measured_state=teleported)      # 0.5 u/s from the robot
    np.testing.assert_array_equal(d.command, [0.81, 0.70])            # not back toward 0.22
    assert not d.clamped


def test_one_wrong_state_sample_does_not_carry_the_speed_limit_with_it():
    """A glitch in joint_states (one sample 0.48 off) while the targets move on: the target is
    still limited from what was sent, not pulled toward the glitch."""
    g = _position_gate()
    for k in range(3):
        g.check([0.30 + 0.01 * k, 0.20], k * DT, measured_state=[0.30 + 0.01 * k, 0.20])
    d = g.check([0.33, 0.20], 3 * DT, measured_state=[0.80, 0.20])
    assert abs(d.command[0] - 0.32) <= 1.2 * DT + 1e-9                 # within the speed limit
    d = g.check([0.34, 0.20], 4 * DT, measured_state=[0.33, 0.20])
    assert abs(d.command[0] - 0.34) <= 1.2 * DT + 1e-9


def test_step_from_measured_state():
    g = gate(max_state_step=(0.3, 0.3, 0.0), acceleration_mode='off', jerk_mode='off')
    state = np.array([0.0, 0.0, np.nan])
    assert not g.check([0.2, 0.1, 1.0], 0.0, measured_state=state).veto
    d = g.check([0.5, 0.1, 1.0], DT, measured_state=state)
    assert d.veto and by_name(d)['command.state_step'].values['dim'] == 0
    with pytest.raises(ValueError, match='measured_state'):
        g.check([0.0, 0.0, 0.0], 2 * DT, measured_state=[0.0])


def test_differences_use_what_was_sent_not_what_was_asked():
    g = gate(jerk_mode='off')
    g.check([0.2, 0.0, 0.0], 0.0, record=False)
    g.record_sent(np.array([0.0, 0.0, 0.0]), 0.0)     # the caller held instead
    d = g.check([0.2, 0.0, 0.0], DT)
    np.testing.assert_allclose(d.command, [0.2, 0.0, 0.0])   # from 0: exactly 10 /s^2


def test_after_a_pause_velocity_dims_restart_from_rest():
    g = gate(jerk_mode='off')
    v = 0.0
    for k in range(10):
        v = g.check([v + 0.2, 0.0, 0.0], k * DT).command[0]
    assert v == pytest.approx(1.0)
    d = g.check([1.0, 0.0, 0.0], 10 * DT + 1.0)      # 1 s gap > history_timeout_s
    assert d.clamped and d.command[0] == pytest.approx(0.2)


def test_off_mode_disables_a_check():
    d = gate(acceleration_mode='off', jerk_mode='off').check([0.9, 0.0, 0.0], 0.0)
    assert not d.clamped and by_name(d)['command.acceleration'].reason == 'off'


def test_scripted_expert_commands_are_never_clamped(sim_env):
    g = gate()
    for k in range(300):
        a = sim_env.expert_action()
        d = g.check(a, k * DT, chunk_switch=k % 25 == 0)
        assert not d.veto and not d.clamped, (k, d.reasons)
        sim_env.step(d.command)
