import numpy as np
import pytest

from vla_edge.core.watchdog import Level, Watchdog, WatchdogConfig

DT = 1 / 50


def armed(clean_frames, **params):
    params.setdefault('latch.arm_after_s', 0.0)     # armed on the first of each input
    wd = Watchdog(WatchdogConfig.from_params(params))
    wd.on_chunk(0.0)
    wd.on_frame(clean_frames[0], 0.0, 0.0)
    decision = wd.on_command([0.0, 0.0, -1.0], 0.0)
    assert wd.armed and not decision.holding
    return wd


def test_holds_without_latching_until_every_input_has_arrived(clean_frames):
    wd = Watchdog(WatchdogConfig.from_params({'latch.arm_after_s': 0.0}))
    d = wd.on_command([0.1, 0.0, -1.0], 0.0)
    assert d.holding and not d.latched and d.command is None    # nothing safe known yet
    assert d.reasons == ('frame.stale: no frame received yet',
                         'liveness.action_chunk: no action_chunk received yet')
    assert {r.name: r for r in wd.results(0.0)}['watchdog.latch'].reason == \
        'holding: waiting for camera frame, action_chunk'
    wd.on_frame(clean_frames[0], 0.01, 0.01)
    wd.on_chunk(0.02)
    d = wd.on_command([0.1, 0.0, -1.0], 0.02)
    assert not d.holding and wd.armed and wd.latch.trips == 0
    np.testing.assert_allclose(d.command, [0.1, 0.0, -1.0])


def _feed(wd, clean_frames, t0, t1, frames=True):
    """Commands every tick from t0 to t1, frames at 30 Hz (none if `frames` is False)."""
    decisions, t = [], t0
    while t < t1 - 1e-9:
        if frames and int(t * 30) != int((t - DT) * 30):
            wd.on_frame(clean_frames[int(t * 30) % 2], t, t)
        decisions.append((t, wd.on_command([0.1, 0.0, -1.0], t)))
        t += DT
    return decisions


def test_a_start_up_stall_before_arming_holds_but_does_not_latch(clean_frames):
    """Default: armed only after every input has been fault-free for arm_after_s (0.5 s), so
    a stall while the pipeline warms up needs no reset; after that, the same stall latches."""
    wd = Watchdog(WatchdogConfig.from_params({'frame.max_age_s': 0.09}))   # as watchdog.yaml
    assert wd.config.latch.arm_after_s == 0.5
    wd.on_chunk(0.0)
    wd.on_frame(clean_frames[0], 0.0, 0.0)
    early = _feed(wd, clean_frames, 0.0, 0.3)
    assert all(d.holding and not d.latched for _, d in early)
    assert early[-1][1].reasons == ('arming after 0.5 s without faults',)
    stall = _feed(wd, clean_frames, 0.3, 0.5, frames=False)    # no frame for 0.2 s
    assert any('frame.stale' in r for _, d in stall for r in d.reasons)
    assert not wd.armed and wd.latch.trips == 0
    wd.on_chunk(0.5)
    settle = _feed(wd, clean_frames, 0.5, 1.2)
    first_pass = next(t for t, d in settle if not d.holding)
    assert 0.5 + 0.5 - 1e-9 <= first_pass <= 1.0 + 2 * DT      # 0.5 s after the stall ended
    assert wd.armed and wd.latch.trips == 0
    after = _feed(wd, clean_frames, 1.2, 1.4, frames=False)  # the same stall, now armed
    assert after[-1][1].latched and wd.latch.trips == 1


def test_an_armed_watchdog_rides_out_its_own_stall_but_not_a_dead_camera(clean_frames):
    """watchdog.yaml's stall allowance (1.5 control periods): the whole process stalls for
    0.15 s, frames resume behind it, no latch; a camera that then stops still latches."""
    wd = Watchdog(WatchdogConfig.from_params({'frame.max_age_s': 0.09,
                                              'frame.stall_gap_periods': 1.5}))
    assert wd.frames.stall_gap_s == pytest.approx(0.03)
    wd.on_chunk(0.0)
    wd.on_frame(clean_frames[0], 0.0, 0.0)
    _feed(wd, clean_frames, 0.0, 1.0)
    assert wd.armed and not wd.latch.latched
    # Nothing ran in (1.0, 1.15); a command queued behind the stall is handled before the
    # frame that was queued with it.
    first = wd.on_command([0.1, 0.0, -1.0], 1.15)
    assert not first.latched and 'stall' in wd.frames.check_stale(1.15).reason
    wd.on_frame(clean_frames[0], 1.14, 1.152)
    after = _feed(wd, clean_frames, 1.16, 1.5)
    assert not any(d.latched for _, d in after) and wd.latch.trips == 0
    assert wd.frames.stalls == 1
    dead = _feed(wd, clean_frames, 1.5, 1.7, frames=False)
    assert dead[-1][1].latched and any('frame.stale' in r for r in dead[-1][1].reasons)


def test_nan_command_latches_and_holds_zero_velocity_with_the_last_grip(clean_frames):
    wd = armed(clean_frames)
    wd.on_command([0.1, 0.1, 1.0], DT)
    d = wd.on_command([np.nan, 0.0, 1.0], 2 * DT)
    assert d.holding and d.latched and any('command.finite' in r for r in d.reasons)
    np.testing.assert_array_equal(d.command, [0.0, 0.0, 1.0])
    d = wd.on_command([0.1, 0.1, 1.0], 3 * DT)      # good again, but latched
    assert d.holding and d.latched
    np.testing.assert_array_equal(d.command, [0.0, 0.0, 1.0])
    result = wd.reset(3 * DT)
    assert result.accepted, result.reason
    assert not wd.on_command([0.1, 0.1, 1.0], 4 * DT).holding


def test_clamped_command_passes_with_a_warning(clean_frames):
    wd = armed(clean_frames)
    d = wd.on_command([0.0, 0.0, 1.55], DT)
    assert d.clamped and not d.holding and d.command[2] == 1.5 and wd.latch.trips == 0


def test_reset_refused_while_the_camera_is_black(clean_frames):
    wd = armed(clean_frames)
    black = np.zeros_like(clean_frames[0])
    for k in range(1, 5):
        wd.on_frame(black, k / 30, k / 30)
    assert wd.latch.latched
    t = 5 / 30
    wd.on_command([0.0, 0.0, -1.0], t)
    result = wd.reset(t)
    assert not result.accepted and 'frame.dark' in result.reason
    wd.on_frame(clean_frames[1], t + 1 / 30, t + 1 / 30)
    assert wd.reset(t + 1 / 30).accepted


def test_inference_hang_latches_through_the_timer(clean_frames):
    wd = armed(clean_frames)
    t = 0.0
    while t < 2.9:
        t += DT
        wd.on_command([0.0, 0.0, -1.0], t)
        if int(t * 30) != int((t - DT) * 30):
            wd.on_frame(clean_frames[int(t * 30) % 2], t, t)
        assert not wd.on_tick(t).latched
    t = 3.1
    wd.on_frame(clean_frames[0], t, t)
    d = wd.on_tick(t)
    assert d.latched and any('liveness.action_chunk' in r for r in d.reasons)
    assert d.command is None        # commands still arrive: on_command answers them
    assert wd.on_command([0.5, 0.0, -1.0], t).holding


def test_dead_executor_gets_the_safe_command_from_the_timer(clean_frames):
    wd = armed(clean_frames, **{'latch.hold_mode': 'zero_velocity'})
    wd.on_command([0.1, 0.0, -1.0], DT)
    d = wd.on_tick(0.3)
    assert not d.latched and d.command is None
    d = wd.on_tick(0.7)      # no command_raw for 0.68 s > 0.5 s
    assert d.latched and d.holding
    np.testing.assert_array_equal(d.command, [0.0, 0.0, -1.0])


def test_auto_clear_after_healthy_time(clean_frames):
    wd = armed(clean_frames, **{'latch.auto_clear_after_s': 0.2})
    wd.on_command([np.inf, 0.0, 0.0], DT)
    assert wd.latch.latched
    states = [wd.on_command([0.0, 0.0, -1.0], k * DT).holding for k in range(2, 16)]
    assert states[0] and not states[-1]


def test_results_cover_every_check_for_diagnostics(clean_frames):
    wd = armed(clean_frames)
    results = wd.results(0.01)
    names = {r.name for r in results}
    for expected in ('frame.stale', 'frame.dark', 'frame.blocked', 'motion.consistency',
                     'liveness.command_raw', 'liveness.action_chunk', 'command.acceleration',
                     'watchdog.latch'):
        assert expected in names
    assert max(r.level for r in results) == Level.OK
    wd.on_command([np.nan, 0.0, 0.0], DT)
    latch = {r.name: r for r in wd.results(DT)}['watchdog.latch']
    assert latch.level == Level.ERROR and 'command.finite' in latch.reason


# Position targets as config/position_targets.yaml gates them, held where the robot is.
POSITION_STATE_HOLD = {'latch.hold_mode': 'state', 'command.velocity_dims': [-1],
                       'command.value_min': [0.0, 0.0, -1.5], 'command.value_max': [1.0, 1.0, 1.5],
                       'command.max_acceleration': [0.0, 0.0, 0.0],
                       'command.max_jerk': [0.0, 0.0, 0.0],
                       'command.max_switch_jump': [0.0, 0.0, 0.0]}


def test_a_state_hold_keeps_where_the_robot_was_when_it_started(clean_frames):
    """Position targets, latch.hold_mode state: a veto holds the measured position read when the
    hold starts, not the last target (ahead of the robot), and not a measurement that keeps
    moving (an arm that sags would creep)."""
    wd = armed(clean_frames, **POSITION_STATE_HOLD)
    wd.on_command([0.52, 0.40, 1.0], DT, measured_state=np.array([0.50, 0.41, np.nan]))
    d = wd.on_command([np.nan, 0.40, 1.0], 2 * DT,
                      measured_state=np.array([0.505, 0.41, np.nan]))
    assert d.latched
    np.testing.assert_array_equal(d.command, [0.505, 0.41, 1.0])
    d = wd.on_command([0.6, 0.4, 1.0], 3 * DT, measured_state=np.array([0.49, 0.40, np.nan]))
    np.testing.assert_array_equal(d.command, [0.505, 0.41, 1.0])   # latched, no creep


def test_a_state_hold_reads_the_newest_state_and_starts_afresh_after_a_reset(clean_frames):
    """The state seen between commands counts (command_raw may fall silent); a stale one does
    not; an accepted reset forgets the old hold (a sim reset may have moved the robot)."""
    wd = armed(clean_frames, **POSITION_STATE_HOLD)
    wd.on_command([0.56, 0.40, 1.0], DT, measured_state=np.array([0.50, 0.40, np.nan]))
    wd.note_state([0.55, 0.40, np.nan], 3 * DT)          # it kept moving after the command
    np.testing.assert_array_equal(wd.hold_command(4 * DT), [0.55, 0.40, 1.0])
    wd._held = None
    np.testing.assert_array_equal(wd.hold_command(1.0), [0.56, 0.40, 1.0])   # state too old
    wd._held = np.array([0.55, 0.40, 1.0])
    assert wd.reset(4 * DT).accepted                   # no fault now: accepted
    assert wd._held is None


def _latched_state_hold(clean_frames, **params):
    """Latched on a NaN target, holding [0.50, 0.40] where the robot was read (the gripper at
    its last safe -1, a velocity dim at 0); readings then go through note_state, one control
    period apart."""
    wd = armed(clean_frames, **{**POSITION_STATE_HOLD,
                                'command.max_state_step': [0.15, 0.15, 0.0], **params})
    wd.note_state([0.50, 0.40, np.nan], DT)
    d = wd.on_command([np.nan, 0.40, 1.0], 2 * DT)
    assert d.latched
    expected = np.array([0.50, 0.40, -1.0])
    expected[[i for i in wd.config.command.velocity_dims if i >= 0]] = 0.0
    np.testing.assert_array_equal(d.command, expected)
    clock = iter(range(3, 1000))

    def hold_after(*readings):
        for r in readings:
            k = next(clock)
            wd.note_state(r, k * DT)
        return wd.hold_command(k * DT)
    return wd, hold_after


def test_a_state_hold_moves_to_a_robot_found_beyond_the_gates_reach_of_it(clean_frames):
    """A sim reset (or a push) that moved the robot during a hold: once two successive readings
    put it beyond command.max_state_step of the held target (and within reach of each other),
    the hold moves to where it is, on every measured position dim (y, within reach, is not
    pulled back either). A robot within reach keeps the old hold (no creep); one glitched
    reading, readings out of bounds, or two that disagree move nothing. Without this the hold
    pulled the robot back across the workspace."""
    wd, hold_after = _latched_state_hold(clean_frames)
    held = [0.50, 0.40, -1.0]
    np.testing.assert_array_equal(hold_after([0.62, 0.30, np.nan]), held)   # within reach
    np.testing.assert_array_equal(hold_after([0.0, 0.0, np.nan], [0.5, 0.4, np.nan]), held)
    for x in (1.4, 1.41, 1.42):   # far, but out of bounds (wrong, or a robot off its map)
        np.testing.assert_array_equal(hold_after([x, 0.40, np.nan]), held)
    np.testing.assert_array_equal(hold_after([0.0, 0.9, np.nan], [0.9, 0.0, np.nan]), held)
    assert wd.hold_reanchors == 0
    np.testing.assert_array_equal(hold_after([0.20, 0.33, np.nan]), held)   # teleported ...
    for _ in range(3):   # ... the same reading asked for again, or passed with a command
        wd.on_command([0.5, 0.4, 1.0], 3.0, measured_state=np.array([0.20, 0.33, np.nan]))
        np.testing.assert_array_equal(wd.hold_command(3.0), held)
    wd, hold_after = _latched_state_hold(clean_frames)
    moved = hold_after([0.20, 0.33, np.nan], [0.21, 0.33, np.nan])   # two readings agree
    np.testing.assert_array_equal(moved, [0.21, 0.33, -1.0])   # x and y where it is
    assert wd.hold_reanchors == 1 and wd.latch.latched
    np.testing.assert_array_equal(hold_after([0.25, 0.30, np.nan]), moved)   # held from there
    wd.note_state([0.9, 0.9, np.nan], 80 * DT)
    for t in (1.8, 1.9):   # a reading gone stale before the next one is forgotten
        np.testing.assert_array_equal(wd.hold_command(t), moved)
    wd.note_state([0.91, 0.9, np.nan], 2.0)
    np.testing.assert_array_equal(wd.hold_command(2.0), moved)
    assert wd.hold_reanchors == 1


def test_a_state_hold_counts_readings_as_they_arrive_not_by_their_values(clean_frames):
    """A teleported sim robot stands still for a few periods (the same values in each reading):
    its second reading confirms the move. A command passing the reading again adds none."""
    wd, hold_after = _latched_state_hold(clean_frames)
    wd.on_command([0.5, 0.4, 1.0], 2.5 * DT, measured_state=np.array([0.88, 0.10, np.nan]))
    np.testing.assert_array_equal(hold_after([0.88, 0.10, np.nan]), [0.50, 0.40, -1.0])
    np.testing.assert_array_equal(hold_after([0.88, 0.10, np.nan]), [0.88, 0.10, -1.0])


def test_a_moved_hold_leaves_velocity_dims_at_zero_and_judges_only_dims_with_a_reach(
        clean_frames):
    """dim 1 a velocity (held at 0, never re-anchored), dim 2 a measured position without a
    reach: it is not judged, and moves with the others, as a hold that starts reads it."""
    wd, hold_after = _latched_state_hold(clean_frames, **{
        'command.velocity_dims': [1], 'command.value_min': [0.0, -1.0, -1.5],
        'command.value_max': [1.0, 1.0, 1.5], 'command.max_velocity': [0.0, 1.0, 0.0]})
    np.testing.assert_array_equal(hold_after([0.5, 0.9, 1.2], [0.5, -0.9, -1.2]),
                                  [0.50, 0.0, -1.0])   # far only on unjudged dims: held
    assert wd.hold_reanchors == 0
    moved = hold_after([0.1, 0.5, 1.2], [0.11, -0.5, 1.0])
    np.testing.assert_array_equal(moved, [0.11, 0.0, 1.0])
    assert wd.hold_reanchors == 1
