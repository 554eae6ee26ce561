"""The watchdog node over real DDS: a rig node plays camera, executor and policy, and listens as
the robot does. Every check must trip the latch through the node and say why on ~/events and
/diagnostics; the robot must get the safe command, at the control rate, until a reset is accepted.
"""
import json
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_edge.core.polling import wait_until
from vla_edge.nodes.bringup import CONFIG_DIR
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.nodes.messages import chunk_to_trajectory
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.watchdog_node import PARAMETERS, WatchdogNode

PERIOD = 0.02
RNG = np.random.default_rng(7)
BASE = cv2.resize(RNG.integers(0, 255, (16, 16, 3), dtype=np.uint8), (128, 128),
                  interpolation=cv2.INTER_CUBIC)


def healthy_frame() -> np.ndarray:
    """A static textured scene with fresh sensor noise: never frozen, sharp, well exposed."""
    noise = RNG.normal(0.0, 3.0, BASE.shape)
    return np.clip(BASE + noise, 0, 255).astype(np.uint8)


def _wait(condition, timeout_s):
    return wait_until(condition, timeout_s, poll_s=0.01)


class Rig:
    """Publishes healthy inputs at their rates (commands 50 Hz, frames 30 Hz, chunks 4 Hz) until
    told otherwise; records what the robot receives, the events and the diagnostics."""

    def __init__(self, ctx, **params):
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.wd = WatchdogNode(context=ctx, parameter_overrides=overrides, cli_args=[
            '--ros-args', '--params-file', str(CONFIG_DIR / 'watchdog.yaml')])
        self.io = rclpy.create_node('rig', context=ctx)
        self.cmd_pub = self.io.create_publisher(Float64MultiArray, 'command_raw', 10)
        self.chunk_pub = self.io.create_publisher(JointTrajectory, 'action_chunk', 10)
        self.image_pub = self.io.create_publisher(Image, 'camera/image_raw',
                                                  qos_profile_sensor_data)
        self.state_pub = self.io.create_publisher(JointState, 'joint_states', 10)
        self.reset_client = self.io.create_client(Trigger, 'watchdog/reset')
        self.lock = threading.Lock()
        self.received, self.events, self.diagnostics = [], [], []
        self.io.create_subscription(Float64MultiArray, 'command', self._on_command, 100)
        self.io.create_subscription(String, 'watchdog/events', self._on_event, 100)
        self.io.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 100)
        self.command = np.array([0.1, 0.0, -1.0])    # what the "executor" sends
        self.frame = healthy_frame                    # what the "camera" sends
        self.encoding = 'rgb8'
        self.commands_on = self.frames_on = self.chunks_on = True
        self.chunk_msg = chunk_to_trajectory(np.tile([0.1, 0.0, -1.0], (50, 1)), 0.0, 50.0,
                                             ['vx', 'vy', 'grip'])
        self._running = True
        self.spin = IsolatedExecutors([self.wd, self.io], ctx).start()
        self._thread = threading.Thread(target=self._stream, daemon=True)
        self._thread.start()

    def _on_command(self, msg):
        with self.lock:
            self.received.append((time.monotonic(), np.array(msg.data)))

    def _on_event(self, msg):
        with self.lock:
            self.events.append(json.loads(msg.data))

    def _on_diag(self, msg):
        with self.lock:
            self.diagnostics.append(msg)

    def _stream(self):
        t0, sent = time.monotonic(), {'cmd': 0, 'frame': 0, 'chunk': 0}
        while self._running:
            t = time.monotonic() - t0
            if t >= sent['cmd'] * PERIOD:
                sent['cmd'] += 1
                if self.commands_on:
                    self.cmd_pub.publish(Float64MultiArray(data=list(self.command)))
            if t >= sent['frame'] / 30.0:
                sent['frame'] += 1
                if self.frames_on:
                    self.publish_frame(self.frame())
            if t >= sent['chunk'] * 0.25:
                sent['chunk'] += 1
                if self.chunks_on:
                    self.chunk_pub.publish(self.chunk_msg)
            time.sleep(0.002)

    def publish_frame(self, rgb):
        h, w = rgb.shape[:2]
        msg = Image(height=h, width=w, encoding=self.encoding, step=w * 3, data=rgb.tobytes())
        msg.header.stamp = self.wd.get_clock().now().to_msg()
        self.image_pub.publish(msg)

    # -- queries -------------------------------------------------------------------------------
    def armed(self, timeout_s=5.0):
        return _wait(lambda: any(e['event'] == 'armed' for e in self.events), timeout_s)

    def latch_event(self, timeout_s=3.0):
        ok = _wait(lambda: any(e['event'] == 'latch' for e in self.events), timeout_s)
        return next(e for e in self.events if e['event'] == 'latch') if ok else None

    def received_since(self, t0):
        with self.lock:
            return [c for t, c in self.received if t >= t0]

    def status(self, check):
        """The newest /diagnostics status of `check`."""
        statuses = self.statuses(check)
        return statuses[-1] if statuses else None

    def statuses(self, check, since=0):
        """Every /diagnostics status of `check`, oldest first, from diagnostics message
        number `since` on."""
        with self.lock:
            return [s for arr in self.diagnostics[since:] for s in arr.status
                    if s.name.endswith(f': {check}')]

    def reset(self):
        assert self.reset_client.wait_for_service(timeout_sec=5.0)
        future = self.reset_client.call_async(Trigger.Request())
        assert _wait(future.done, 5.0)
        return future.result()

    def close(self):
        self._running = False
        self._thread.join()
        self.spin.shutdown()
        self.wd.destroy_node()
        self.io.destroy_node()


@pytest.fixture
def rig_factory(ros_context):
    rigs = []

    def make(**params):
        rigs.append(Rig(ros_context, **params))
        return rigs[-1]
    yield make
    for r in rigs:
        r.close()


def _settled_length(got: list, quiet_s: float = 0.3, timeout_s: float = 3.0) -> int:
    """len(got) once it has stopped growing for quiet_s."""
    deadline = time.monotonic() + timeout_s
    n = len(got)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        if len(got) == n:
            return n
        n = len(got)
    raise AssertionError(f'messages kept arriving for {timeout_s} s after the publisher stopped')


@pytest.mark.parametrize('hold_mode', ['zero_velocity', 'last'])
def test_a_stopping_watchdog_leaves_the_robot_on_the_safe_command(ros_context, hold_mode):
    """A forward command controller keeps the last command it got: stopped mid-motion, the
    watchdog's last word must be zero velocity, not the motion, in either hold mode (nothing
    follows it, so 'last' would hold the motion for good)."""
    rig = Rig(ros_context, **{'latch.hold_mode': hold_mode})
    rig.command = np.array([0.4, 0.2, 1.0])
    listener = rclpy.create_node('listener', context=ros_context)
    got = []
    listener.create_subscription(Float64MultiArray, 'command', lambda m: got.append(list(m.data)),
                                 100)
    spin = IsolatedExecutors([listener], ros_context).start()
    try:
        assert rig.armed()
        assert _wait(lambda: got and got[-1] == [0.4, 0.2, 1.0], 5.0), got[-3:]
        rig._running = False
        rig._thread.join()
        rig.spin.shutdown()
        moving = _settled_length(got)   # commands already in flight still land first
        rig.wd.destroy_node()
        assert _wait(lambda: len(got) >= moving + 3, 2.0), got[-3:]
        assert got[moving:] == [[0.0, 0.0, 1.0]] * 3    # sent three times: nothing re-sends it
    finally:
        spin.shutdown()
        listener.destroy_node()
        rig.io.destroy_node()


def test_healthy_commands_pass_unchanged(rig_factory):
    rig = rig_factory()
    assert rig.armed(), 'the watchdog never armed'
    time.sleep(0.5)
    got = rig.received_since(time.monotonic() - 0.4)
    assert len(got) >= 15
    assert all(np.array_equal(c, rig.command) for c in got)     # bit for bit
    assert rig.wd.wd.latch.trips == 0
    assert _wait(lambda: rig.status('watchdog.latch') is not None, 2.0)
    assert rig.status('frame.blur').level == bytes([0])


def _blur(rig):
    rig.frame = lambda: cv2.GaussianBlur(healthy_frame(), (0, 0), 3.0)


def _wrong_encoding(rig):
    rig.encoding = 'yuv422'


def _mono_frames(rig):
    rig.encoding = 'mono8'


def _frozen(rig):
    frame = healthy_frame()
    rig.frame = lambda: frame


FAULTS = {   # check name -> how the rig produces it
    'command.finite': lambda rig: setattr(rig, 'command', np.array([np.nan, 0.0, -1.0])),
    'command.length': lambda rig: setattr(rig, 'command', np.array([0.1, 0.0])),
    'command.state_step': lambda rig: rig.state_pub.publish(JointState(
        name=['x', 'y', 'gripper'], position=[0.5, 0.5, 0.0], velocity=[0.6, 0.0, 0.0])),
    'frame.dark': lambda rig: setattr(rig, 'frame', lambda: np.zeros((128, 128, 3), np.uint8)),
    'frame.saturated': lambda rig: setattr(rig, 'frame',
                                           lambda: np.full((128, 128, 3), 255, np.uint8)),
    'frame.blur': _blur,
    'frame.blocked': lambda rig: setattr(rig, 'frame', lambda: np.where(
        np.arange(128)[None, :, None] < 64, 0, healthy_frame()).astype(np.uint8)),
    'frame.format': lambda rig: setattr(rig, 'frame', lambda: healthy_frame()[:64, :64].copy()),
    'frame.format/encoding': _wrong_encoding,
    'frame.format/mono': _mono_frames,
    'frame.frozen': _frozen,
    'frame.stale': lambda rig: setattr(rig, 'frames_on', False),
    'liveness.command_raw': lambda rig: setattr(rig, 'commands_on', False),
    'liveness.action_chunk': lambda rig: setattr(rig, 'chunks_on', False),
    'motion.consistency': lambda rig: setattr(rig, 'command', np.array([0.6, 0.0, -1.0])),
}


@pytest.mark.parametrize('case', sorted(FAULTS))
def test_each_check_latches_through_the_node_with_its_reason(rig_factory, case):
    check = case.split('/')[0]
    rig = rig_factory(**{'command.max_state_step': [0.2, 0.2, 0.0], 'motion.window_s': 0.3,
                         'liveness.chunk_timeout_s': 0.5})
    assert rig.armed()
    time.sleep(0.3)
    assert rig.wd.wd.latch.trips == 0
    before = len(rig.diagnostics)
    FAULTS[case](rig)
    event = rig.latch_event()
    assert event is not None, f'{case}: no latch'
    assert any(r.startswith(check + ':') for r in event['reasons']), event
    time.sleep(0.2)
    held = rig.received_since(time.monotonic() - 0.15)
    assert held and all(c[0] == 0.0 and c[1] == 0.0 and c[2] == -1.0 for c in held), held
    # The check reported its fault on /diagnostics (sent at the latch). Its newest status may be
    # healthy again by now: the motion check, for one, sees no commanded motion while the robot
    # holds. The latch's status keeps the reason for as long as the robot is held.
    faulted = [st for st in rig.statuses(check, before) if st.level in (bytes([2]), bytes([3]))]
    assert faulted and faulted[0].message       # the reason, for a person
    latch = rig.status('watchdog.latch')
    assert latch.level == bytes([2]) and check in latch.message


def test_small_excess_is_clamped_large_is_vetoed(rig_factory):
    rig = rig_factory()
    assert rig.armed()
    rig.command = np.array([1.1, 0.0, -1.0])      # 1.1 half-ranges: clamp
    time.sleep(0.4)
    got = rig.received_since(time.monotonic() - 0.1)
    assert got and all(c[0] == 1.0 for c in got)
    assert not rig.wd.wd.latch.latched
    assert any(e['event'] == 'clamp' and 'command.bounds' in e['reasons'][0]
               for e in rig.events)
    rig.command = np.array([2.5, 0.0, -1.0])      # beyond bounds_veto_ratio: veto
    event = rig.latch_event()
    assert event and 'command.bounds' in event['reasons'][0]


def test_bounds_mode_veto_vetoes_a_small_excess(rig_factory):
    rig = rig_factory(**{'command.bounds_mode': 'veto'})
    assert rig.armed()
    rig.command = np.array([1.1, 0.0, -1.0])
    event = rig.latch_event()
    assert event and event['reasons'][0].startswith('command.bounds')


def test_latch_holds_the_safe_command_at_the_control_rate(rig_factory):
    rig = rig_factory()
    assert rig.armed()
    time.sleep(0.2)                         # the robot got commands: the safe one is known
    rig.command = np.array([np.nan, 0.0, -1.0])
    assert rig.latch_event()
    rig.commands_on = False                 # the executor dies: the watchdog keeps sending
    time.sleep(0.3)
    t0 = time.monotonic()
    time.sleep(1.0)
    with rig.lock:
        times = [t for t, _ in rig.received if t >= t0]
        values = [c for t, c in rig.received if t >= t0]
    assert len(times) >= 40, len(times)
    assert np.max(np.diff(times)) < 3 * PERIOD
    assert all(np.array_equal(c, [0.0, 0.0, -1.0]) for c in values)


def test_a_late_command_never_leaves_the_robot_without_one(rig_factory):
    """command_raw pauses for 3 periods (not yet the heartbeat timeout): the robot keeps getting
    the last command at the control rate, and nothing latches."""
    rig = rig_factory(**{'liveness.command_timeout_s': 0.2})
    assert rig.armed()
    time.sleep(0.3)
    t0 = time.monotonic()
    rig.commands_on = False
    time.sleep(0.06)
    rig.commands_on = True
    time.sleep(0.3)
    with rig.lock:
        times = [t for t, _ in rig.received if t >= t0]
    assert np.max(np.diff(times)) < 2 * PERIOD
    assert rig.wd.counts['fills'] >= 2
    assert rig.wd.wd.latch.trips == 0


def test_reset_is_refused_while_the_fault_is_present_then_accepted(rig_factory):
    rig = rig_factory()
    assert rig.armed()
    rig.command = np.array([np.nan, 0.0, -1.0])
    assert rig.latch_event()
    refused = rig.reset()
    assert not refused.success and 'command.finite' in refused.message
    assert rig.wd.wd.latch.latched
    rig.command = np.array([0.5, 0.0, -1.0])
    time.sleep(0.1)
    accepted = rig.reset()
    assert accepted.success and 'cleared' in accepted.message, accepted.message
    time.sleep(0.3)
    got = rig.received_since(time.monotonic() - 0.3)
    assert any(c[0] > 0 for c in got)                                   # moving again ...
    assert max(np.abs(np.diff([c[0] for c in got]))) <= 0.2 + 1e-9     # ... from rest, ramped
    kinds = [e['event'] for e in rig.events]
    assert 'reset_refused' in kinds and 'reset' in kinds


def test_auto_clear_after_healthy_time(rig_factory):
    rig = rig_factory(**{'latch.auto_clear_after_s': 0.3})
    assert rig.armed()
    rig.command = np.array([np.nan, 0.0, -1.0])
    assert rig.latch_event()
    time.sleep(0.5)
    assert rig.wd.wd.latch.latched                     # the fault is still there
    rig.command = np.array([0.1, 0.0, -1.0])
    assert _wait(lambda: any(e['event'] == 'clear' for e in rig.events), 2.0)
    assert not rig.wd.wd.latch.latched
    time.sleep(0.2)
    assert np.array_equal(rig.received_since(time.monotonic() - 0.05)[-1], rig.command)


def test_a_chunk_switch_flags_the_next_commands_for_the_jump_check(rig_factory):
    rig = rig_factory(**{'command.max_acceleration': [0.0, 0.0, 0.0],
                         'command.max_jerk': [0.0, 0.0, 0.0], 'command.switch_jump_mode': 'veto',
                         'command.max_switch_jump': [0.3, 0.3, 0.0]})
    assert rig.armed()
    rig.chunks_on = False
    time.sleep(0.3)                                      # the last chunk's flags are used up
    rig.command = np.array([0.5, 0.0, -1.0])             # a step, but not at a switch
    time.sleep(0.3)
    assert not rig.wd.wd.latch.latched
    rig.chunk_pub.publish(rig.chunk_msg)                 # now a chunk, then the step
    time.sleep(0.005)
    rig.command = np.array([0.0, 0.0, -1.0])
    event = rig.latch_event()
    assert event and event['reasons'][0].startswith('command.switch_jump'), event


def test_malformed_chunks_are_no_heartbeat(rig_factory):
    rig = rig_factory(**{'liveness.chunk_timeout_s': 0.4})
    assert rig.armed()
    bad = JointTrajectory(points=[JointTrajectoryPoint(positions=[np.nan, 0.0, 0.0])])
    rig.chunk_msg = bad
    event = rig.latch_event()
    assert event and event['reasons'][0].startswith('liveness.action_chunk')
    time.sleep(2.0)   # bad chunks go on at 4 Hz
    rejected = [e for e in rig.events if e['event'] == 'chunk_rejected']
    assert rejected and 'non-finite' in rejected[0]['reasons'][0]
    # Each is counted, but ~/events says it once per event_repeat_s (1 s), not per chunk.
    assert rig.wd.counts['chunks_rejected'] >= 5
    assert len(rejected) <= 1 + (rejected[-1]['stamp_s'] - rejected[0]['stamp_s']) / 1.0


def test_debug_image_shows_the_verdict(rig_factory):
    rig = rig_factory(debug_image=True)
    images = []
    rig.io.create_subscription(Image, 'watchdog/debug_image', images.append,
                               qos_profile_sensor_data)
    assert _wait(lambda: len(images) >= 2, 5.0)
    assert images[-1].width >= 320 and images[-1].encoding == 'rgb8'


@pytest.mark.parametrize('params, message', [
    ({'frame.max_age_s': -1.0}, 'frame.max_age_s'),
    ({'latch.hold_mode': 'drift'}, 'latch.hold_mode'),
    ({'command.value_min': [-1.0, -1.0]}, 'command.value_min'),
    ({'frame.dark_level': 251.0}, 'frame.dark_level'),
    ({'state.fields': ['velocity', 'velocity', 'effort']}, 'state.fields'),
    ({'hold_timer_periods': 0.5}, 'hold_timer_periods'),
    ({'frame.stall_gap_periods': 1.0}, 'frame.stall_gap_periods'),   # not above the timer's
])
def test_bad_parameters_are_rejected_with_their_name(ros_context, params, message):
    with pytest.raises(ParameterError, match=message.replace('.', r'\.')):
        WatchdogNode(context=ros_context,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def test_parameters_are_described_and_read_only(ros_context):
    node = WatchdogNode(context=ros_context)
    try:
        d = node.describe_parameters(['frame.max_age_s'])[0]
        assert 'stale' in d.description and d.read_only
        assert d.floating_point_range[0].to_value == 60.0
        result = node.set_parameters([Parameter('frame.max_age_s', value=1.0)])[0]
        assert not result.successful
    finally:
        node.destroy_node()


def test_watchdog_yaml_sets_only_declared_parameters():
    from vla_edge.nodes.param_files import flatten

    body = yaml.safe_load((CONFIG_DIR / 'watchdog.yaml').read_text())
    assert set(body) == {'/**/watchdog'}
    unknown = set(flatten(body['/**/watchdog']['ros__parameters'])) - {s.name for s in PARAMETERS}
    assert not unknown



def test_repeated_events_are_throttled_but_not_silenced_by_a_clock_that_went_back(ros_context):
    """The same veto again within event_repeat_s is not news. A clock that went back (a looped
    bag) made every later repeat look 'just said' until the clock caught up: silenced."""
    node = WatchdogNode(context=ros_context)
    try:
        reasons = ['command.velocity: vx 2.0 > 1.0']
        for now in (100.0, 100.5, 101.2, 10.0, 10.3, 11.1):
            node._event('veto', now, reasons, throttle=True)
        assert [e['stamp_s'] for e in node.events] == [100.0, 101.2, 10.0, 11.1]
    finally:
        node.destroy_node()
