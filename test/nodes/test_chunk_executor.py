"""The chunk executor node over real DDS, driven tick by tick on sim time (/clock).

A driver node plays the policy: it answers each chunk_request L ticks later with a chunk whose
action values are the ticks they were planned for (value = observation tick + index). Executing
value t at tick t therefore proves that exactly the stale actions were dropped.
"""
import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.chunk_merge import MergeConfig
from vla_edge.core.polling import wait_until
from vla_edge.nodes.chunk_executor import ChunkExecutor
from vla_edge.nodes.messages import (
    chunk_to_trajectory,
    request_id,
    s_to_stamp,
    stamp_to_s,
    trajectory_to_chunk,
)
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.trajectory_cdr import chunk_to_trajectory_cdr

RATE = 50.0
H = 50
NAMES = ['vx', 'vy', 'grip']


class PolicyDriver(Node):
    """Owns /clock; answers requests after `latency_ticks`; records commands."""

    def __init__(self, context, latency_ticks, offset_per_chunk=0.0, honour_prefix=False):
        super().__init__('policy_driver', context=context)
        self.latency_ticks = latency_ticks
        self.offset_per_chunk = offset_per_chunk
        self.honour_prefix = honour_prefix
        self.clock_pub = self.create_publisher(Clock, '/clock', 10)
        self.chunk_pub = self.create_publisher(JointTrajectory, 'action_chunk', 10)
        self.create_subscription(JointTrajectory, 'chunk_request', self.on_request, 10)
        self.create_subscription(Float64MultiArray, 'command_raw', self.on_command, 10)
        self.requests = []        # (request tick, prefix)
        self.due = []             # (publish after command of this tick, message)
        self.commands = []
        self.sent = 0

    def on_request(self, msg):
        tick = int(round(stamp_to_s(msg.header.stamp) * RATE))
        prefix = trajectory_to_chunk(msg) if msg.points else None
        self.requests.append((tick, prefix))
        values = np.stack([np.array([tick + k + self.sent * self.offset_per_chunk, 0.0, -1.0])
                           for k in range(H)])
        if self.honour_prefix and prefix is not None:
            values[:len(prefix)] = prefix
        self.sent += 1
        chunk = chunk_to_trajectory(values, tick / RATE, RATE, NAMES)
        chunk.header.frame_id = msg.header.frame_id   # echo the request id, as vla_node does
        self.due.append((tick + self.latency_ticks - 1, chunk))

    def on_command(self, msg):
        self.commands.append(np.array(msg.data))


def drive(ctx, ticks, latency_ticks, driver_kwargs=None, clock_ticks=None, quiet=(), **params):
    """`clock_ticks`: the /clock sequence in ticks (default 1..ticks), e.g. to jump it back;
    at the positions in `quiet` no command is awaited."""
    overrides = [Parameter('use_sim_time', value=True), Parameter('control_rate_hz', value=RATE)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    executor_node = ChunkExecutor(context=ctx, parameter_overrides=overrides)
    driver = PolicyDriver(ctx, latency_ticks, **(driver_kwargs or {}))
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(executor_node)
    ex.add_node(driver)
    try:
        for _ in range(20):   # discovery
            driver.clock_pub.publish(Clock(clock=s_to_stamp(0.0)))
            ex.spin_once(timeout_sec=0.05)
        driver.commands.clear()
        for i, tick in enumerate(clock_ticks or range(1, ticks + 1)):
            driver.clock_pub.publish(Clock(clock=s_to_stamp(tick / RATE)))
            want = len(driver.commands) + 1
            for _ in range(3 if i in quiet else 400):
                ex.spin_once(timeout_sec=0.01)
                if len(driver.commands) >= want:
                    break
            else:
                if i not in quiet:
                    pytest.fail(f'no command for tick {tick}')
            for item in [d for d in driver.due if d[0] <= tick]:
                driver.chunk_pub.publish(item[1])
                driver.due.remove(item)
            for _ in range(3):
                ex.spin_once(timeout_sec=0.002)
        return executor_node, driver
    finally:
        ex.shutdown()
        executor_node.destroy_node()
        driver.destroy_node()


def test_async_executes_every_action_at_its_tick_and_drops_exactly_the_stale_ones(ros_context):
    lat = 8
    node, drv = drive(ros_context, 300, lat, mode='async', **{'merge.strategy': 'replace'})
    st = node.scheduler.stats
    assert st.stalled_ticks == 0
    # each later chunk lands after the ticks from its request to request + lat - 1 executed
    assert st.dropped_actions == (st.chunks_received - 1) * lat
    assert len(drv.commands) == 300   # commands[i] is the command of tick i + 1
    first_switch = drv.requests[1][0] + lat
    executed_at = {i + 1: c[0] for i, c in enumerate(drv.commands)}
    late = [t for t, v in executed_at.items() if t >= first_switch and v != t]
    assert not late, f'ticks whose executed action was planned for another tick: {late[:5]}'


def test_max_action_age_replans_before_the_deadline(ros_context):
    """0.4 s = 20 ticks at 50 Hz. The driver answers right after tick request + 7, so the executor
    measures 7 ticks of latency and asks when a chunk's view is 20 - 7 = 13 ticks old; the
    deadline alone would ask only ~13 ticks before a 50-tick chunk runs out."""
    gaps = {}
    for age in (0.4, 0.0):
        node, drv = drive(ros_context, 200, 8, mode='async', max_action_age_s=age,
                          **{'merge.strategy': 'replace'})
        assert node.scheduler.stats.stalled_ticks == 0
        gaps[age] = set(np.diff([t for t, _ in drv.requests[2:]]).tolist())
    assert gaps[0.4] and gaps[0.4] <= {12, 13}   # 12 if one reply was a tick late
    assert min(gaps[0.0]) > 30


def test_a_late_reply_to_a_timed_out_request_does_not_clear_the_resent_one(ros_context):
    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s()
        node._send_request(0)
        node._send_request(1)     # as after a timeout: request 2 is now the one pending
        late = chunk_to_trajectory(np.zeros((H, 3)), node._t0_s, RATE, NAMES)
        late.header.frame_id = request_id(0, 1)
        node.on_chunk(late)
        assert node.scheduler.stats.chunks_received == 1      # its actions are used
        assert node.scheduler.pending_since == 1               # request 2 still pending
        assert node.scheduler.latency.count == 0               # and no latency sample
        late.header.frame_id = request_id(0, 2)
        node.on_chunk(late)
        assert node.scheduler.pending_since is None
        assert node.scheduler.latency.count == 1
    finally:
        node.destroy_node()


def test_a_clock_that_goes_back_restarts_the_timeline(ros_context):
    # A bag played in a loop under use_sim_time: /clock runs 0..4 s, then from 0 again. Ticks
    # counted on the old timeline would treat every new chunk as past and hold the robot.
    lat = 8
    # (rcl restarts a timer one period after the clock goes back: none fires at the jump.)
    node, drv = drive(ros_context, None, lat, clock_ticks=[*range(1, 201), *range(0, 201)],
                      quiet={200}, mode='async', **{'merge.strategy': 'replace'})
    executed = [c[0] for c in drv.commands]
    assert node.clock_jumps_back == 1 and len(executed) == 400
    first, second = executed[:200], executed[200:]
    # The second pass runs as the first did from a fresh start: a start-up wait, then the
    # chunks' actions at their ticks (without the re-anchoring: held to the end, all past).
    assert second == first
    assert all(v == 0.0 for v in second[:lat]) and second[-1] == 200.0
    assert node.scheduler.stats.stalled_ticks == 0
    assert node.snapshot()['clock_jumps_back'] == 1


def test_a_whole_number_for_a_float_parameter_is_taken_as_a_float(ros_context):
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('max_action_age_s', value=0)])
    try:
        assert node.params['max_action_age_s'] == 0.0
        assert node.scheduler.cfg.max_action_age_s == 0.0
    finally:
        node.destroy_node()


def test_chunks_that_land_entirely_in_the_past_are_reported(ros_context):
    node, drv = drive(ros_context, 200, 60, mode='async', **{'merge.strategy': 'replace'})
    assert node.scheduler.stats.chunks_all_past >= 1
    assert node.snapshot()['chunks_all_past'] == node.scheduler.stats.chunks_all_past


def test_sync_mode_stalls_and_holds_safely(ros_context):
    node, drv = drive(ros_context, 200, 10, mode='sync', **{'merge.strategy': 'replace'})
    st = node.scheduler.stats
    assert st.stalled_ticks > 0 and st.dropped_actions == 0
    # every held command is zero velocity with the gripper command unchanged (-1 here)
    holds = [c for c in drv.commands if c[0] == 0.0]
    assert holds and all(np.array_equal(c, [0.0, 0.0, -1.0]) or np.array_equal(c, [0.0, 0.0, 0.0])
                         for c in holds)


@pytest.mark.parametrize('strategy,limit', [('replace', 1.0), ('blend', 0.11),
                                            ('temporal_ensemble', 1 / (1 + np.exp(-0.5)))])
def test_merge_strategies_soften_the_jump_that_replace_makes(ros_context, strategy, limit):
    """Each new chunk disagrees with the old one by +1.0: replace jumps by 1.0 at each switch,
    blend spreads it over 9 ticks, the two-chunk ensemble leaves 1/(1+e^-m) at the overlap end.
    Requests on the deadline only (no age bound), so an overlap is never cut by the next switch."""
    node, drv = drive(ros_context, 250, 8, driver_kwargs={'offset_per_chunk': 1.0},
                      mode='async', max_action_age_s=0.0,
                      **{'merge.strategy': strategy, 'merge.blend_steps': 9})
    steps = np.abs(np.diff([c[0] for c in drv.commands[60:]]))
    assert node.scheduler.stats.stalled_ticks == 0
    assert steps.max() - 1.0 == pytest.approx(limit, abs=0.02)   # 1.0 = the ramp's own slope


def test_prefix_inpaint_sends_the_committed_actions_and_continues_them(ros_context):
    # Deadline requests only: this driver's own actions after a prefix jump by +1 per chunk, so
    # a prefix must not reach past the previous one's end (the age bound asks every ~7 ticks).
    node, drv = drive(ros_context, 250, 8, driver_kwargs={'offset_per_chunk': 1.0,
                                                           'honour_prefix': True},
                      mode='async', max_action_age_s=0.0, **{'merge.strategy': 'prefix_inpaint'})
    with_prefix = [(t, p) for t, p in drv.requests if p is not None]
    assert len(with_prefix) >= 3
    for _, prefix in with_prefix:
        assert len(prefix) >= 8 - 1                      # covers the inference delay
        assert np.allclose(prefix[:, 0], prefix[0, 0] + np.arange(len(prefix)))
    # the executed stream follows the committed prefix through every switch: no jump there
    values = np.array([c[0] for c in drv.commands[60:]])
    assert np.sort(np.abs(np.diff(values)))[-1] <= 1.0 + 1.0 + 1e-9  # at most one step past it


def test_prefix_inpaint_with_the_age_bound_runs_every_committed_action(ros_context):
    """The default age bound (0.3 s) with latency 8 ticks: a request every ~8 ticks, each with the
    actions committed from its own tick on; the policy keeps them, so exactly they run then."""
    node, drv = drive(ros_context, 250, 8, driver_kwargs={'honour_prefix': True},
                      mode='async', **{'merge.strategy': 'prefix_inpaint'})
    ran = {i + 1: c[0] for i, c in enumerate(drv.commands)}   # tick -> executed value
    with_prefix = [(t, p) for t, p in drv.requests if p is not None and t + len(p) <= 250]
    assert len(with_prefix) >= 20
    for tick, prefix in with_prefix:
        assert [ran[tick + k] for k in range(len(prefix))] == prefix[:, 0].tolist(), tick
    assert node.scheduler.stats.stalled_ticks == 0


def test_diagnostics_judge_switches_over_the_recent_window_only(ros_context):
    # A robot runs for hours without a reset: the steps behind the switch ratio are a ring buffer
    # of smoothness_window_s, so memory and the cost of each diagnostics publish stay bounded.
    node, _ = drive(ros_context, 150, 8, mode='async', smoothness_window_s=1.0)
    st = node.scheduler.stats
    assert st.steps.size == 50   # 1 s at 50 Hz
    assert len(st.switch_steps) + len(st.inside_steps) == 50
    assert st.chunks_received > 3 and len(st.switch_steps) >= 1
    assert np.isfinite(node.snapshot()['switch_discontinuity_ratio'])


def test_bad_parameters_are_refused_with_a_clear_message(ros_context):
    with pytest.raises(ParameterError, match=r"control_rate_hz.*out of range.*1000.0.*5000.0"):
        ChunkExecutor(context=ros_context,
                      parameter_overrides=[Parameter('control_rate_hz', value=5000.0)])
    with pytest.raises(ParameterError, match=r"smoothness_window_s.*out of range"):
        ChunkExecutor(context=ros_context,
                      parameter_overrides=[Parameter('smoothness_window_s', value=0.0)])
    with pytest.raises(ParameterError, match=r"'merge.strategy' = 'average' must be one of"):
        ChunkExecutor(context=ros_context,
                      parameter_overrides=[Parameter('merge.strategy', value='average')])
    with pytest.raises(ParameterError, match=r"'joint_names' = \['vx', 'vy', 'grip', 'wz'\] "
                                             r"must name the model's actions"):
        ChunkExecutor(context=ros_context, parameter_overrides=[
            Parameter('joint_names', value=[*NAMES, 'wz']), Parameter('velocity_dims', value=[0])])
    node = ChunkExecutor(context=ros_context)
    try:
        result = node.set_parameters([Parameter('mode', value='sync')])[0]
        assert not result.successful   # read-only: the scheduler is built at start-up
    finally:
        node.destroy_node()


def test_malformed_chunks_are_ignored(ros_context):
    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s()
        bad = chunk_to_trajectory(np.full((5, 3), np.nan), 0.0, RATE, NAMES)
        node.on_chunk(bad)
        node.on_chunk(chunk_to_trajectory(np.zeros((5, 2)), 0.0, RATE, ['vx', 'vy']))
        node.on_chunk(JointTrajectory())
        node.on_chunk(chunk_to_trajectory(np.zeros((10_001, 3)), 0.0, RATE, NAMES))   # 200 s
        assert node.scheduler.stats.chunks_received == 0 and node.chunks_refused == 4
        # the same as bytes, as the raw subscription hands them over, and bytes cut short
        node.on_chunk(serialize_message(bad))
        node.on_chunk(chunk_to_trajectory_cdr(np.zeros((5, 2)), 0.0, RATE, ['vx', 'vy']))
        node.on_chunk(serialize_message(JointTrajectory()))
        node.on_chunk(chunk_to_trajectory_cdr(np.zeros((10_001, 3)), 0.0, RATE, NAMES))
        node.on_chunk(chunk_to_trajectory_cdr(np.zeros((5, 3)), 0.0, RATE, NAMES)[:30])
        assert node.scheduler.stats.chunks_received == 0 and node.chunks_refused == 9
    finally:
        node.destroy_node()


def test_an_executor_tied_to_a_model_refuses_values_none_of_its_actions_have(ros_context):
    # Found by fuzzing: a chunk of 1e308 was played as commands of 1.7e307 (blended). A robot
    # without the watchdog would have got them. Tied to the packaged model (control_rate_hz 0),
    # values over 100 standard deviations of its training actions are refused; the grip column
    # is the widest (std ~0.99), so -98 passes there and fails on vx (std ~0.45).
    tied = ChunkExecutor(context=ros_context)
    free = ChunkExecutor(context=ros_context, parameter_overrides=[
        Parameter('control_rate_hz', value=RATE)])   # no model: another planner's range
    try:
        for node in (tied, free):
            node._t0_s = node.now_s()
        huge = np.full((5, 3), 1e308)
        wrong_units = np.zeros((5, 3))
        wrong_units[:, 0] = -98.0   # vx in cm/s, say
        in_range = np.zeros((5, 3))
        in_range[:, 2] = -98.0
        for values in (huge, wrong_units, in_range):
            for node in (tied, free):
                node.on_chunk(chunk_to_trajectory_cdr(values, node.now_s(), RATE, NAMES))
        assert tied.chunks_refused == 2 and tied.scheduler.stats.chunks_received == 1
        assert free.chunks_refused == 0 and free.scheduler.stats.chunks_received == 3
        reordered = chunk_to_trajectory_cdr(in_range[:, ::-1], tied.now_s(), RATE, NAMES[::-1])
        tied.on_chunk(reordered)   # columns by name: the grip limit follows the grip column
        assert tied.chunks_refused == 2
    finally:
        tied.destroy_node()
        free.destroy_node()


def test_a_foreign_planners_chunk_with_velocities_is_executed_by_its_positions(ros_context):
    """Bytes in another layout than vla_node's (velocities filled in) are read through rclpy."""
    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s()
        msg = chunk_to_trajectory(np.tile([0.3, -0.2, 1.0], (H, 1)), node.now_s(), RATE, NAMES)
        for point in msg.points:
            point.velocities = [0.0, 0.0, 0.0]
        node.on_chunk(serialize_message(msg))
        assert node.scheduler.stats.chunks_received == 1 and node.chunks_refused == 0
        with node.locked_queue() as (scheduler, tick):
            np.testing.assert_array_equal(scheduler.queue.upcoming(tick, 1)[0], [0.3, -0.2, 1.0])
    finally:
        node.destroy_node()


def test_a_chunk_planned_for_another_rate_is_sampled_at_the_executors(ros_context):
    """Points 100 ms apart (a 10 Hz model) played one per tick at 50 Hz would run 5x too fast:
    the executor samples them at its ticks, linearly in time, and the chunk keeps its 0.5 s."""
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('control_rate_hz', value=RATE),
                                              Parameter('latency.percentile', value=90.0)])
    try:
        node._t0_s = node.now_s()
        planned = np.zeros((5, 3))
        planned[:, 0] = np.arange(5)                      # vx 0, 1, 2, 3, 4 at 0, 0.1, ... 0.4 s
        node.on_chunk(chunk_to_trajectory(planned, node._t0_s, 10.0, NAMES))
        assert node.scheduler.stats.chunks_received == 1 and node.chunks_resampled == 1
        with node.locked_queue() as (scheduler, tick):
            queued = scheduler.queue.upcoming(0, 100)
        assert len(queued) == 25                          # 0.5 s at 50 Hz
        np.testing.assert_allclose(queued[:, 0], np.minimum(np.arange(25) / 5.0, 4.0))
        node.on_chunk(chunk_to_trajectory(np.zeros((5, 3)), node.now_s(), RATE,
                                          NAMES))
        assert node.scheduler.stats.chunks_received == 2 and node.chunks_resampled == 1
        snap = node.snapshot()
        assert snap['chunks_resampled'] == 1 and snap['chunks_refused'] == 0
        assert 'latency_p90_ms' in snap and 'latency_p95_ms' not in snap   # named as configured
    finally:
        node.destroy_node()


def test_chunk_columns_are_taken_by_joint_name(ros_context):
    """A chunk listing its joints in another order is reordered; one naming other joints, or
    with times that do not increase, is refused and counted, never played by position."""
    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s()
        node.on_chunk(chunk_to_trajectory(np.tile([-1.0, 0.0, 0.4], (H, 1)), node.now_s(), RATE,
                                          ['grip', 'vy', 'vx']))
        with node.locked_queue() as (scheduler, tick):
            np.testing.assert_array_equal(scheduler.queue.upcoming(tick, 1)[0], [0.4, 0.0, -1.0])
        node.on_chunk(chunk_to_trajectory(np.zeros((H, 3)), node.now_s(), RATE,
                                          ['vx', 'vy', 'elbow']))
        backwards = chunk_to_trajectory(np.zeros((3, 3)), node.now_s(), RATE,
                                        NAMES)
        backwards.points[2].time_from_start.nanosec = 0
        node.on_chunk(backwards)
        assert node.scheduler.stats.chunks_received == 1 and node.chunks_refused == 2
    finally:
        node.destroy_node()


def test_reset_clears_the_queue_and_counters_but_keeps_the_latency_estimate(ros_context):
    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s() - 1.0
        node.scheduler.latency.add(0.2)
        node.scheduler.latency.add(0.2)
        node.on_chunk(chunk_to_trajectory(np.zeros((H, 3)), node.now_s(), RATE, NAMES))
        assert node.scheduler.stats.chunks_received == 1
        old = node.reset_queue()
        assert old.chunks_received == 1
        assert node.scheduler.stats.chunks_received == 0
        assert node.scheduler.queue.remaining(0) == 0
        assert node.scheduler.latency.estimate_s() == pytest.approx(0.2)
    finally:
        node.destroy_node()


def test_a_chunk_requested_before_a_reset_is_discarded_when_it_lands_after_it(ros_context):
    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s() - 1.0
        node._send_request(node.tick_of(node.now_s()))
        before = chunk_to_trajectory(np.ones((H, 3)), node.now_s(), RATE, NAMES)
        before.header.frame_id = request_id(0, 1)           # answers the request just sent
        node.reset_queue()                                   # new episode: epoch 1
        node.on_chunk(before)
        assert node.scheduler.stats.chunks_received == 0
        assert node.discarded_after_reset == 1
        node._send_request(node.tick_of(node.now_s()))
        after = chunk_to_trajectory(np.zeros((H, 3)), node.now_s(), RATE, NAMES)
        after.header.frame_id = request_id(1, 2)
        node.on_chunk(after)
        assert node.scheduler.stats.chunks_received == 1
        foreign = chunk_to_trajectory(np.zeros((H, 3)), node.now_s(), RATE, NAMES)
        node.on_chunk(foreign)                               # no request id: accepted
        assert node.scheduler.stats.chunks_received == 2
    finally:
        node.destroy_node()


def test_a_new_instruction_drops_the_queue_of_the_old_task(ros_context):
    from std_msgs.msg import String

    node = ChunkExecutor(context=ros_context)
    try:
        node._t0_s = node.now_s() - 1.0
        node.on_instruction(String(data='put the tea bag in the mug'))   # the first: no reset
        node.on_chunk(chunk_to_trajectory(np.zeros((H, 3)), node.now_s(), RATE, NAMES))
        node.on_instruction(String(data='put the tea bag in the mug'))   # repeated: no reset
        node.on_instruction(String(data='Put the tea bag in the mug '))  # the same task
        node.on_instruction(String(data='  '))      # vla_node refuses it: not a new task
        node.on_instruction(String(data='\u200b'))  # nor this (no visible character)
        assert node.scheduler.stats.chunks_received == 1
        node.on_instruction(String(data='put the red block in the bowl'))
        assert node.scheduler.stats.chunks_received == 0
        assert node.scheduler.queue.remaining(node.tick_of(node.now_s())) == 0
    finally:
        node.destroy_node()


def test_tools_see_and_edit_the_queue_between_two_ticks(ros_context):
    """locked_queue / queued_ticks / last_command_was_hold: the fault injector's public view."""
    node = ChunkExecutor(context=ros_context)
    try:
        assert node.queued_ticks() == 0 and node.last_command_was_hold
        node._t0_s = node.now_s()
        node.on_chunk(chunk_to_trajectory(np.ones((H, 3)), node.now_s(), RATE, NAMES))
        with node.locked_queue() as (scheduler, tick):
            assert scheduler is node.scheduler and tick == 0
            edited = scheduler.queue.upcoming(tick, H).copy()
            edited[:] = 7.0
            scheduler.queue.install(edited, tick, tick)
        assert node.queued_ticks() >= H - 2
        node.on_tick()
        assert not node.last_command_was_hold
        np.testing.assert_array_equal(node._last_command, [7.0, 7.0, 7.0])
    finally:
        node.destroy_node()


def test_realtime_priority_moves_the_control_thread_to_sched_fifo_or_warns(ros_context,
                                                                         monkeypatch):
    import os
    import threading

    from rclpy.parameter import Parameter

    default = ChunkExecutor(context=ros_context)
    assert default._apply_realtime_priority() == 0                    # default: off
    default.destroy_node()
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('realtime_priority', value=20)])
    try:
        seen = {}

        def control_thread():     # a thread of its own: the policy is per thread on Linux
            seen['applied'] = node._apply_realtime_priority()
            seen['policy'] = os.sched_getscheduler(0)
        t = threading.Thread(target=control_thread)
        t.start()
        t.join()
        if seen['applied']:
            assert seen['applied'] == 20 and seen['policy'] == os.SCHED_FIFO
        else:                     # no rtprio permission here: normal scheduling, a warning
            assert seen['policy'] == os.SCHED_OTHER
        assert os.sched_getscheduler(0) == os.SCHED_OTHER     # this thread is untouched

        def refused(*_):
            raise PermissionError(1, 'Operation not permitted')
        monkeypatch.setattr(os, 'sched_setscheduler', refused)
        assert node._apply_realtime_priority() == 0           # warns, runs on
    finally:
        node.destroy_node()


def test_a_tick_on_another_thread_than_the_real_time_one_is_named(ros_context, monkeypatch):
    """A shared multi-threaded executor runs ticks on whichever thread is free: only the first
    was moved to SCHED_FIFO, so the control loop would run at normal priority, unannounced."""
    import os
    import threading

    monkeypatch.setattr(os, 'sched_setscheduler', lambda *_: None)   # "granted"
    node = ChunkExecutor(context=ros_context, parameter_overrides=[
        Parameter('realtime_priority', value=50), Parameter('control_rate_hz', value=RATE)])
    warnings = []

    class Log:
        def __getattr__(self, level):
            return lambda text, **kw: warnings.append(text) if level == 'warning' else None

    node.get_logger = Log
    try:
        node.on_tick()
        node.on_tick()                      # the same thread: nothing to say
        assert node.realtime_priority_applied == 50 and warnings == []
        other = threading.Thread(target=node.on_tick)
        other.start()
        other.join()
        assert len(warnings) == 1 and 'another thread than the one set to SCHED_FIFO' in \
            warnings[0]
    finally:
        node.destroy_node()


@pytest.mark.parametrize('hold_mode, expected', [('zero_velocity', [0.0, 0.0, 0.7]),
                                                 ('last', [0.3, -0.2, 0.7])])
def test_hold_repeats_the_last_command_or_zeroes_only_the_velocity_dims(ros_context, hold_mode,
                                                                         expected):
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('hold_mode', value=hold_mode)])
    try:
        node._last_command = np.array([0.3, -0.2, 0.7])
        np.testing.assert_array_equal(node._hold(), expected)
    finally:
        node.destroy_node()


@pytest.mark.parametrize('hold_mode', ['zero_velocity', 'last'])
def test_a_stopping_executor_leaves_the_robot_on_the_hold(ros_context, hold_mode):
    """Without the watchdog the robot listens to command_raw: the executor's last command must
    have zero velocity, not the action that was playing, in either hold mode."""
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('hold_mode', value=hold_mode)])
    listener = Node('command_listener', context=ros_context)
    got = []
    listener.create_subscription(Float64MultiArray, 'command_raw',
                                 lambda m: got.append(list(m.data)), 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(listener)
    try:
        node._last_tick_s = node.now_s()               # it has been commanding the robot
        node._last_command = np.array([0.3, -0.2, 0.7])
        for _ in range(200):                             # until discovery lets one through
            node._publish_command(node._last_command, node.now_s())
            ex.spin_once(timeout_sec=0.02)
            if got:
                break
        moving = -1
        while moving != len(got):      # let commands already in flight land first
            moving = len(got)
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.02)
        node.destroy_node()
        assert wait_until(lambda: ex.spin_once(timeout_sec=0.01) or len(got) >= moving + 3,
                          2.0)
        assert got[moving:] == [[0.0, 0.0, 0.7]] * 3
    finally:
        listener.destroy_node()


@pytest.mark.parametrize('command_type', ['float64_multi_array', 'joint_trajectory',
                                          'twist_stamped'])
def test_each_command_type_carries_the_command_over_dds(ros_context, command_type):
    from geometry_msgs.msg import TwistStamped

    msg_type = {'float64_multi_array': Float64MultiArray, 'joint_trajectory': JointTrajectory,
                'twist_stamped': TwistStamped}[command_type]
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('command_type', value=command_type)])
    listener = Node('command_listener', context=ros_context)
    got = []
    listener.create_subscription(msg_type, 'command_raw', got.append, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(listener)
    try:
        command = np.array([0.25, -0.5, 1.0])
        for _ in range(200):                  # until discovery lets one through
            node._publish_command(command, node.now_s())
            ex.spin_once(timeout_sec=0.02)
            if got:
                break
        assert got, f'no {command_type} command arrived'
        msg = got[0]
        if command_type == 'float64_multi_array':
            assert list(msg.data) == [0.25, -0.5, 1.0]
        elif command_type == 'joint_trajectory':
            assert list(msg.joint_names) == NAMES
            assert len(msg.points) == 1 and list(msg.points[0].positions) == [0.25, -0.5, 1.0]
        else:
            assert (msg.twist.linear.x, msg.twist.linear.y) == (0.25, -0.5)
            assert msg.header.stamp.sec > 0 or msg.header.stamp.nanosec > 0
    finally:
        ex.shutdown()
        listener.destroy_node()
        node.destroy_node()


def test_the_control_rate_defaults_to_the_model_manifests(ros_context, edited_model):
    """control_rate_hz 0 (the shipped config): the rate the model was trained for, so its chunks
    play as planned, not resampled; an explicit rate still wins."""
    folder = edited_model(lambda manifest: manifest.update(control_rate_hz=25.0))
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('model_dir', value=str(folder))])
    try:
        assert node.rate_hz == 25.0 and node.params['control_rate_hz'] == 25.0
        node._t0_s = node.now_s()
        node.on_chunk(chunk_to_trajectory(np.zeros((5, 3)), node.now_s(), 25.0,
                                          NAMES))
        assert node.scheduler.stats.chunks_received == 1 and node.chunks_resampled == 0
    finally:
        node.destroy_node()
    node = ChunkExecutor(context=ros_context,
                         parameter_overrides=[Parameter('model_dir', value=str(folder)),
                                              Parameter('control_rate_hz', value=100.0)])
    try:
        assert node.rate_hz == 100.0
    finally:
        node.destroy_node()


@pytest.mark.parametrize('rate, model_dir, expected', [
    (0.5, '', "must be 0 \\(from the model manifest\\) or in \\[1, 1000\\]"),
    (0.0, '/nonexistent/model', 'control_rate_hz is 0 .* /nonexistent/model cannot be read'),
])
def test_a_rate_that_cannot_be_resolved_is_refused(rate, model_dir, expected):
    from vla_edge.nodes.chunk_executor import resolve_control_rate

    with pytest.raises(ParameterError, match=expected):
        resolve_control_rate(rate, model_dir)


POSITION_PARAMS = [Parameter('joint_names', value=['x', 'y', 'grip']),
                   Parameter('velocity_dims', value=[-1]),
                   Parameter('position_dims', value=[0, 1]),
                   Parameter('hold_mode', value='state'),
                   Parameter('merge.strategy', value='offset_fade')]


def position_executor(ctx, **params):
    overrides = [p for p in POSITION_PARAMS if p.name not in params]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return ChunkExecutor(context=ctx, parameter_overrides=overrides)


def test_a_position_executor_holds_where_the_robot_is_measured(ros_context):
    """hold_mode state: the position dims hold the newest joint_states positions (after a
    reset too, where 'last' would repeat the old episode's target), the gripper its last
    command; before any state, nothing is sent."""
    node = position_executor(ros_context)
    try:
        assert node._hold() is None and node.holds_without_state == 1
        node._last_command = np.array([0.4, 0.5, 1.0])
        node.on_state(JointState(name=['gripper', 'x', 'y'], position=[0.4, 0.21, 0.37]))
        np.testing.assert_array_equal(node._hold(), [0.21, 0.37, 1.0])
        node.on_state(JointState(name=['x', 'y'], position=[0.215, 0.36]))   # sag, noise
        np.testing.assert_array_equal(node._hold(), [0.21, 0.37, 1.0])   # latched: no creep
        node.reset_queue()
        node.on_state(JointState(name=['x', 'y'], position=[0.8, 0.1]))   # a teleported robot
        np.testing.assert_array_equal(node._hold(), [0.8, 0.1, 1.0])     # the gripper as it was
        assert node.scheduler.cfg.motion_dims == 2
        assert node.scheduler.cfg.merge == MergeConfig('offset_fade', fade_steps=40)
        assert node.action_range is None   # targets are the robot's values, not the model's
    finally:
        node.destroy_node()


def test_a_position_executor_drops_its_queue_when_the_robot_is_not_where_the_targets_are(
        ros_context):
    """A sim reset with the same instruction, a paused or blocked robot: the queued targets
    belong to where the plan thought the robot was. Past hold_state.max_lag the executor drops
    them (and later replies) and holds where fresh joint_states put the robot."""
    node = position_executor(ros_context)
    try:
        now = node.now_s()
        node._last_command = np.array([0.40, 0.50, 1.0])
        node.on_state(JointState(name=['x', 'y'], position=[0.45, 0.52]))   # 0.05 behind: fine
        assert not node._robot_lost(now)
        node.on_state(JointState(name=['x', 'y'], position=[0.80, 0.10]))   # elsewhere
        assert node._robot_lost(node.now_s())
        assert not node._robot_lost(node.now_s() + 1.0)   # a stale state says nothing
        epoch, chunks = node._epoch, node.scheduler.stats
        node._lose_track(now)
        assert node.lost_track == 1 and node._epoch == epoch + 1
        assert node.scheduler.stats is chunks             # the run's counters go on
        np.testing.assert_array_equal(node._hold(), [0.80, 0.10, 1.0])
        assert node._retry_at_s == now + 0.2              # no chunk asked for before then
        node._lose_track(now + 0.1)                       # still waiting: not pushed on
        assert node._retry_at_s == now + 0.2
        node.reset_queue()
        assert node._retry_at_s == float('-inf')          # a reset asks at once
        # ... and does not itself read as a lost robot: the target is where the robot is
        np.testing.assert_array_equal(node._last_command[:2], [0.80, 0.10])
        assert not node._robot_lost(node.now_s())
        node._lose_track(now)
        node._last_tick_s = now
        node._restart_timeline(now - 10.0)   # a looped bag's /clock: the wait was on the old one
        assert node._retry_at_s == float('-inf') and node._measured_s is None
    finally:
        node.destroy_node()


def test_position_parameters_that_do_not_fit_are_refused(ros_context):
    with pytest.raises(ParameterError, match="'position_dims' = \\[1, 2\\] must be distinct "
                                             'leading indices'):
        position_executor(ros_context, position_dims=[1, 2])
    with pytest.raises(ParameterError, match="'hold_state.joints' .* for hold_mode state"):
        position_executor(ros_context, **{'hold_state.joints': ['x', 'y']})
    for hold in ('last', 'zero_velocity'):
        with pytest.raises(ParameterError, match=f"'hold_mode' = '{hold}': with position_dims"):
            position_executor(ros_context, hold_mode=hold)
    with pytest.raises(ParameterError, match='a joint for every position dim'):
        position_executor(ros_context, **{'hold_state.joints': ['x', '', '']})
    with pytest.raises(ParameterError, match="'twist_stamped' carries velocities"):
        position_executor(ros_context, command_type='twist_stamped')
    with pytest.raises(ParameterError, match="'prefix_inpaint' commits"):
        position_executor(ros_context, **{'merge.strategy': 'prefix_inpaint'})
    with pytest.raises(ParameterError, match="'offset_fade' fades a position offset"):
        ChunkExecutor(context=ros_context,
                      parameter_overrides=[Parameter('merge.strategy', value='offset_fade')])


def test_the_offset_fade_speed_limit_is_per_tick_at_the_executors_rate(ros_context):
    node = position_executor(ros_context, control_rate_hz=100.0,
                             **{'merge.max_speed': 0.6})
    try:
        assert node.scheduler.cfg.merge.max_step == pytest.approx(0.006)
    finally:
        node.destroy_node()
