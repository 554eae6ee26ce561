"""watchdog_node: the last gate before the robot. Nothing reaches `command` without passing it.

Subscribes `command_raw` (std_msgs/Float64MultiArray, the chunk executor's default command type;
a publisher of another type there is reported by name in the log and /diagnostics),
`action_chunk` (heartbeat: an inference hang is no new chunk in time; the next commands are
flagged as a chunk switch for the jump check), the camera (sensor_msgs/Image, or CompressedImage
with `use_compressed`; sensor-data QoS) and optionally `joint_states` (measured state mapped into
command space). Publishes `command` (the robot's interface, `command_type`: Float64MultiArray by
default, JointTrajectory or TwistStamped; the checked, possibly clamped command, or the safe
command), `/diagnostics` (one status per check),
`~/events` (std_msgs/String, JSON: latch, veto, clamp, reset... with reasons a person can read) and,
if enabled, `~/debug_image`. Service `~/reset` (std_srvs/Trigger) clears a latched veto, and is
refused while a fault is still present.

The logic is `core.watchdog.Watchdog`; this node adds the clock (the node's: sim time honoured),
topics, threads and one rule of its own: once the robot got a command, it gets one every control
period. If `command_raw` is late, the hold timer re-sends the last command (what a robot does by
itself until its command timeout); when the stream stays away for `liveness.command_timeout_s` the
watchdog latches and the timer sends the safe command instead. A fault found on a camera frame
sends the safe command at once, without waiting for the next command.

Frames are checked on a worker thread with a newest-frame slot (never a queue), so a slow check
drops frames instead of delaying commands. One lock guards the Watchdog; a decision and its
publication happen under it, so commands leave in the order they were decided. That one lock
is why the callbacks stay in one file (over 400 lines); the parameters are in
watchdog_node_params.py and every check is in core/watchdog.
"""
from __future__ import annotations

import json
import threading
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.errors import InputError
from vla_edge.core.ros_image import ImageConverter, rgb_to_image_msg_fields
from vla_edge.core.watchdog import (
    CheckResult,
    FrameReport,
    Level,
    Watchdog,
    WatchdogConfig,
    WatchdogDecision,
    draw_overlay,
    parameter_table,
)
from vla_edge.nodes.camera_input import subscribe_camera
from vla_edge.nodes.messages import (
    COMMAND_TYPES,
    command_message,
    stamp_to_s,
    status,
)
from vla_edge.nodes.model_rate import resolve_control_rate
from vla_edge.nodes.node_lifecycle import (
    destroyed_if_refused,
    diagnostic_name,
    send_last_command,
)
from vla_edge.nodes.params import ParameterError, declare_all, distinct_names
from vla_edge.nodes.spin import spin_nodes
from vla_edge.nodes.trajectory_view import read_trajectory
from vla_edge.nodes.twist_command import command_twist
from vla_edge.nodes.watchdog_node_params import PARAMETERS

STATE_FIELDS = ('position', 'velocity')
GATED_TYPE = 'std_msgs/msg/Float64MultiArray'   # what command_raw must be
RATE_WINDOW = 101      # commands over which command_raw's rate is measured (2 s at 50 Hz)
RATE_TOLERANCE = 0.3   # relative: a loaded machine delays ticks, a wrong rate is 2x or 0.5x
SWITCH_COMMANDS = 2   # commands flagged as a chunk switch after a chunk arrives (see on_chunk)



class WatchdogNode(Node):
    """Gate between command_raw and command; see the module docstring."""

    @destroyed_if_refused
    def __init__(self, **kwargs):
        super().__init__('watchdog', **kwargs)
        p = declare_all(self, PARAMETERS)
        p['command.control_rate_hz'] = resolve_control_rate(
            p['command.control_rate_hz'], p['model_dir'], name='command.control_rate_hz')
        core_names = {info.name for info in parameter_table()}
        try:
            self.config = WatchdogConfig.from_params({k: v for k, v in p.items()
                                                      if k in core_names})
        except ValueError as exc:
            raise ParameterError(f'watchdog parameters: {exc}') from exc
        stall = self.config.frame.stall_gap_periods
        if 0.0 < stall <= p['hold_timer_periods']:
            raise ParameterError(
                f"parameter 'frame.stall_gap_periods' = {stall:g} must be 0 (off) or more than "
                f"hold_timer_periods = {p['hold_timer_periods']:g}: the watchdog runs at least "
                'that often, so a shorter gap is no stall')
        if stall and stall / self.config.command.control_rate_hz >= self.config.frame.max_age_s:
            self.get_logger().warning(
                f'frame.stall_gap_periods = {stall:g} control periods is not shorter than '
                f'frame.max_age_s = {self.config.frame.max_age_s:g} s: a stall of the watchdog '
                'itself that is too short to count can still make a good camera look stale')
        self.params = p
        self._state_map = self._state_mapping(p, self.config.command.command_dim)
        names = list(p['joint_names'])
        if len(names) != self.config.command.command_dim or not distinct_names(names):
            raise ParameterError(f"parameter 'joint_names' = {names} must be "
                                 f'command.command_dim = {self.config.command.command_dim} '
                                 'distinct, non-empty names')
        self.twist = command_twist(p, len(names))
        self.wd = Watchdog(self.config)
        self.period_s = 1.0 / self.config.command.control_rate_hz
        self.converter = ImageConverter()
        self._lock = threading.Lock()
        self._last_sent: np.ndarray | None = None
        self._measured: np.ndarray | None = None
        self._switch_pending = 0
        self._trips_seen = 0
        self._reanchors_seen = 0
        self._latched_seen = False
        self._armed_seen = False
        self._last_event: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.counts = dict.fromkeys(('commands_in', 'commands_out', 'held', 'clamped',
                                     'vetoed', 'fills', 'frames', 'frames_dropped',
                                     'frames_unreadable', 'chunks', 'chunks_rejected'), 0)
        self.events: list[dict] = []   # every event sent, for tests and the fault harness

        self.command_pub = self.create_publisher(COMMAND_TYPES[p['command_type']], 'command', 10)
        self.command_raw_mismatch: list[str] = []   # other publishers' types on command_raw
        self._command_times: deque[float] = deque(maxlen=RATE_WINDOW)
        self.command_rate_problem: str | None = None
        self.event_pub = self.create_publisher(String, '~/events', 100)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.debug_pub = (self.create_publisher(Image, '~/debug_image', qos_profile_sensor_data)
                          if p['debug_image'] else None)
        self.create_subscription(Float64MultiArray, 'command_raw', self.on_command, 10)
        self.create_subscription(JointTrajectory, 'action_chunk', self.on_chunk, 10,
                                 raw=True)   # bytes, read with numpy: trajectory_view.py
        subscribe_camera(self, p['camera_topic'], p['use_compressed'], self.on_frame)
        if self._state_map:
            self.create_subscription(JointState, 'joint_states', self.on_state, 10)
        self.create_service(Trigger, '~/reset', self.on_reset)
        self.hold_timer = self.create_timer(self.period_s * p['hold_timer_periods'],
                                            self.on_hold_timer)
        # Re-armed by every frame: fires the moment the camera has been silent for max_age_s,
        # so a stopped camera is caught then, not at the next command.
        self.stale_timer = self.create_timer(self.config.frame.max_age_s, self.on_stale_timer)
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics)

        self._frame_slot = threading.Condition()
        self._frame_msg: Image | CompressedImage | None = None
        self._running = True
        self._frame_thread = threading.Thread(target=self._frame_loop, name='watchdog_frames',
                                              daemon=True)
        self._frame_thread.start()
        self.get_logger().info(
            f'watchdog: gating command_raw -> command at {1 / self.period_s:g} Hz, camera '
            f'{p["camera_topic"]!r} (mount {self.config.motion.camera_mount}), auto-clear after '
            f'{self.config.latch.auto_clear_after_s:g} s (0: reset only)')

    @staticmethod
    def _state_mapping(p: dict, dims: int) -> list[tuple[int, str, str, float]]:
        """[(command dim, joint name, field, scale)] for the measured dims."""
        joints, fields, scale = p['state.joints'], p['state.fields'], p['state.scale']
        for name, value in (('state.joints', joints), ('state.fields', fields),
                            ('state.scale', scale)):
            if len(value) != dims:
                raise ParameterError(f'parameter {name!r} = {list(value)} must have '
                                     f'command.command_dim = {dims} items')
        bad = [f for f in fields if f not in STATE_FIELDS]
        if bad:
            raise ParameterError(f'parameter \'state.fields\' = {list(fields)}: items must be '
                                 f'one of {list(STATE_FIELDS)}')
        return [(i, j, f, float(s)) for i, (j, f, s) in enumerate(zip(joints, fields, scale))
                if j]

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs --------------------------------------------------------------------------------
    def on_command(self, msg: Float64MultiArray) -> None:
        now = self.now_s()
        with self._lock:
            self.counts['commands_in'] += 1
            self._command_times.append(now)
            switch = self._switch_pending > 0
            self._switch_pending = max(0, self._switch_pending - 1)
            decision = self.wd.on_command(np.asarray(msg.data, dtype=np.float64), now,
                                          self._measured, chunk_switch=switch)
            self._track(now, decision)
            if decision.command is not None:
                self._send(decision.command)

    def on_chunk(self, msg: JointTrajectory | bytes) -> None:
        """A heartbeat of the policy. A chunk that could never become a command (malformed,
        non-finite, wrong width) is not one: a policy producing only garbage is hung."""
        now = self.now_s()
        try:
            actions = read_trajectory(msg).actions()
            problem = None
            if actions.shape[1] != self.config.command.command_dim:
                problem = (f'{actions.shape[1]} values per point, expected '
                           f'{self.config.command.command_dim}')
            elif not np.all(np.isfinite(actions)):
                problem = 'non-finite values'
        except ValueError as exc:
            problem = str(exc)
        with self._lock:
            if problem is not None:
                self.counts['chunks_rejected'] += 1
                # Throttled: a planner sending garbage at its rate would flood ~/events.
                self._event('chunk_rejected', now, (f'action_chunk: {problem}',), throttle=True)
                return
            self.counts['chunks'] += 1
            self.wd.on_chunk(now)
            # The executor merges it at its next tick; which command that is depends on the
            # order the two nodes got the chunk, so the next two are checked as switches.
            self._switch_pending = SWITCH_COMMANDS

    def on_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        measured = np.full(self.config.command.command_dim, np.nan)
        for dim, joint, field, scale in self._state_map:
            values = msg.position if field == 'position' else msg.velocity
            i = index.get(joint)
            if i is not None and i < len(values):
                measured[dim] = values[i] * scale
        with self._lock:   # one reading: noted before any command passes it again
            self._measured = measured
            now = self.now_s()
            self.wd.note_state(measured, now)   # where a state hold may move to the robot
            self._report_hold_moved(now)

    def on_frame(self, msg: Image | CompressedImage) -> None:
        self.stale_timer.reset()
        with self._frame_slot:
            if self._frame_msg is not None:
                self.counts['frames_dropped'] += 1
            self._frame_msg = msg
            self._frame_slot.notify()

    def _frame_loop(self) -> None:
        while self._running:
            with self._frame_slot:
                while self._frame_msg is None and self._running:
                    self._frame_slot.wait(timeout=0.1)
                if not self._running:
                    return
                msg, self._frame_msg = self._frame_msg, None
            try:
                self._check_frame(msg)
            except Exception as exc:   # never let the thread die: the stale check would trip
                if not self.context.ok():
                    return
                self.get_logger().error(f'frame check failed ({type(exc).__name__}: {exc})',
                                        throttle_duration_sec=2.0)

    def _check_frame(self, msg: Image | CompressedImage) -> None:
        stamp = stamp_to_s(msg.header.stamp)
        compressed = isinstance(msg, CompressedImage)
        try:
            rgb = self.converter.to_rgb(msg)
        except InputError as exc:
            what = f'compressed {msg.format!r}' if compressed else \
                f'{msg.width}x{msg.height} {msg.encoding!r}'
            rgb, problem = None, f'{what}: {exc}'
        now = self.now_s()
        with self._lock:
            self.counts['frames'] += 1
            if rgb is None:
                self.counts['frames_unreadable'] += 1
                results = self._unreadable_frame(problem, stamp, now)
            else:
                results = self.wd.on_frame(rgb, stamp, now,
                                           encoding=None if compressed else msg.encoding)
            if self._track(now) and self._last_sent is not None:
                self._send_safe()   # a latch on a frame does not wait for the next command
            banner = self._banner()
        if self.debug_pub is not None and rgb is not None:
            image = draw_overlay(rgb, results, banner)
            out = Image(**rgb_to_image_msg_fields(image, 'rgb8'))
            out.header = msg.header
            self.debug_pub.publish(out)

    def _unreadable_frame(self, problem: str, stamp_s: float,
                          now_s: float) -> tuple[CheckResult, ...]:
        """A frame that cannot even be converted is a format fault, held until a readable frame
        replaces it: the same state the core keeps for a frame that is not an RGB array."""
        frames = self.wd.frames
        frames.note_stamp(stamp_s, now_s)
        results = (frames.check_stale(now_s),
                   CheckResult('frame.format', Level.ERROR, f'unreadable frame: {problem}'))
        frames.last_report = FrameReport(results, None)
        return results

    # -- timer, service ------------------------------------------------------------------------
    def on_hold_timer(self) -> None:
        """Nothing went out for a control period: notice silence, and keep the robot fed."""
        now = self.now_s()
        with self._lock:
            decision = self.wd.on_tick(now)
            newly_latched = self._track(now)
            if decision.command is not None:
                self._send(decision.command)
            elif self._last_sent is None:
                return
            elif decision.holding or newly_latched:
                self._send_safe()
            else:
                # command_raw is late, not yet timed out: the last command once more, as the
                # robot would hold it by itself. Not recorded in the gate's history: the late
                # command follows within the same period, and its differences are to the last
                # one that was decided.
                self.counts['fills'] += 1
                self._send(self._last_sent)

    def on_stale_timer(self) -> None:
        """The camera has been silent for max_age_s: judge it now."""
        now = self.now_s()
        with self._lock:
            decision = self.wd.on_tick(now)
            if decision.command is not None:
                self._track(now)
                self._send(decision.command)
            elif self._track(now) and self._last_sent is not None:
                self._send_safe()

    def reset_latch(self):
        """Clear a latched veto if no fault is present (the `~/reset` service, callable in-process
        too); says so on ~/events and /diagnostics. Returns the core's ResetResult."""
        now = self.now_s()
        with self._lock:
            result = self.wd.reset(now)
            self._latched_seen = self.wd.latch.latched
            self._last_event.clear()
            self._event('reset' if result.accepted else 'reset_refused', now, (result.reason,))
        self.publish_diagnostics()
        return result

    def on_reset(self, request, response):
        result = self.reset_latch()
        response.success = result.accepted
        response.message = result.reason
        return response

    # -- outputs -------------------------------------------------------------------------------
    def _track(self, now: float, decision: WatchdogDecision | None = None) -> bool:
        """Count, and send events for what changed; returns True if the latch just tripped."""
        wd = self.wd
        if decision is not None and decision.gate is not None:
            if decision.gate.veto:
                self.counts['vetoed'] += 1
                self._event('veto', now, decision.gate.reasons, throttle=True)
            elif decision.clamped:
                self.counts['clamped'] += 1
                self._event('clamp', now, decision.gate.reasons, throttle=True)
            if decision.holding:
                self.counts['held'] += 1
        if wd.armed and not self._armed_seen:
            self._armed_seen = True
            self._event('armed', now, ('every monitored input has arrived',))
        tripped = wd.latch.trips > self._trips_seen
        self._trips_seen = wd.latch.trips
        if tripped:
            self._event('latch', now, wd.latch.reasons)
            self.get_logger().error('veto latched: ' + '; '.join(wd.latch.reasons))
        elif self._latched_seen and not wd.latch.latched:
            self._event('clear', now, (f'healthy for {wd.config.latch.auto_clear_after_s:g} s: '
                                       'auto-cleared',))
        self._latched_seen = wd.latch.latched
        if tripped:
            self._publish_diagnostics_locked(now)
        return tripped

    def _report_hold_moved(self, now: float) -> None:
        """A hold that moved to where the robot is (the core's hold_reanchors): say so once."""
        if self.wd.hold_reanchors > self._reanchors_seen:
            self._reanchors_seen = self.wd.hold_reanchors
            why = ('the robot is beyond command.max_state_step of the held target (a reset or a '
                   'push moved it): the hold moved to where it is')
            self._event('hold_moved', now, (why,))
            self.get_logger().warning(why)

    def _send_safe(self, hold_mode: str | None = None) -> None:
        """The safe command in `hold_mode` (default: latch.hold_mode, as the supervisor holds),
        if one is known."""
        # The explicit mode (the final command) takes the newest state whatever its age.
        held = self.wd.hold_command(self.now_s() if hold_mode is None else None, hold_mode)
        if held is not None:
            self.wd.gate.record_sent(held, self.now_s())
            self._send(held)

    def _send_final_safe(self) -> None:
        """The safe command with the velocity dimensions zero whatever latch.hold_mode says:
        nothing follows it, so a held velocity would be held for good (in 'state' mode the
        measured position too)."""
        with self._lock:
            self._send_safe('state' if self.config.latch.hold_mode == 'state'
                            else 'zero_velocity')

    def _send(self, command: np.ndarray) -> None:
        """Publish (under the lock: commands leave in decision order) and re-arm the timer."""
        self._last_sent = np.asarray(command, dtype=np.float64).copy()
        self.command_pub.publish(command_message(self.params['command_type'], self._last_sent,
                                                 self.now_s(), self.params['joint_names'],
                                                 self.twist))
        self.counts['commands_out'] += 1
        self.hold_timer.reset()

    def _event(self, kind: str, now: float, reasons, throttle: bool = False) -> None:
        reasons = tuple(reasons)
        if throttle:   # the same checks again (their numbers change every time): not news
            checks = tuple(sorted({r.split(':', 1)[0] for r in reasons}))
            last = self._last_event.get(kind)
            # (a clock that went back, a looped bag, is not "just said": the event goes out)
            if last is not None and last[1] == checks and \
                    0.0 <= now - last[0] < self.params['event_repeat_s']:
                return
            self._last_event[kind] = (now, checks)
        event = {'event': kind, 'stamp_s': round(now, 6), 'latched': self.wd.latch.latched,
                 'reasons': list(reasons)}
        self.events.append(event)
        del self.events[:-10000]
        self.event_pub.publish(String(data=json.dumps(event)))

    def _banner(self) -> str:
        if self.wd.latch.latched:
            return 'LATCHED: ' + '; '.join(self.wd.latch.reasons)
        return 'OK' if self.wd.armed else 'HOLDING: not armed (inputs missing or settling)'

    def publish_diagnostics(self) -> None:
        self._check_command_raw_types()
        now = self.now_s()
        with self._lock:
            self._check_command_rate(now)
            self._publish_diagnostics_locked(now)

    def _check_command_rate(self, now: float) -> None:
        """Velocity, acceleration and jerk limits assume commands at command.control_rate_hz;
        an executor ticking at another rate (a 100 Hz controller with this file's 50 Hz) makes
        them too loose or too tight. Bringup refuses that; under ros2 launch it is measured
        here (call under the lock), over the last RATE_WINDOW commands while they flow."""
        times = self._command_times
        problem = None
        if len(times) == RATE_WINDOW and now - times[-1] < 0.5 and times[-1] > times[0]:
            measured = (len(times) - 1) / (times[-1] - times[0])
            rate = self.config.command.control_rate_hz
            if abs(measured / rate - 1.0) > RATE_TOLERANCE:
                source = ('' if self.get_parameter('command.control_rate_hz').value else
                          ' 0: the model manifest\'s')
                problem = (f'command_raw arrives at {measured:.0f} Hz but the watchdog checks '
                           f'at {rate:g} Hz (command.control_rate_hz{source}): velocity/'
                           'acceleration/jerk limits are judged at the wrong rate; set it to the '
                           'executor\'s control_rate_hz')
        if problem and not self.command_rate_problem:
            self.get_logger().error(problem)
        self.command_rate_problem = problem

    def _check_command_raw_types(self) -> None:
        """A command_raw publisher of another type (the executor set to joint_trajectory or
        twist_stamped) never reaches this node, and the robot would get only the safe command
        with no reason given: name it, in the log and in /diagnostics."""
        topic = self.resolve_topic_name('command_raw')
        others = sorted({f'{info.node_namespace.rstrip("/")}/{info.node_name} '
                         f'({info.topic_type})'
                         for info in self.get_publishers_info_by_topic(topic)
                         if info.topic_type != GATED_TYPE})
        if others and others != self.command_raw_mismatch:
            self.get_logger().error(
                f'{topic} is published as a type this watchdog does not gate ({GATED_TYPE}): '
                f'{", ".join(others)}; nothing from it reaches the robot. Set chunk_executor\'s '
                'command_type to float64_multi_array and the watchdog\'s command_type to the '
                'robot\'s interface')
        self.command_raw_mismatch = others

    def _publish_diagnostics_locked(self, now: float) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        name = diagnostic_name(self)
        arr.status = [status(f'{name}: {r.name}', bytes([int(r.level)]), r.reason,
                             dict(r.values), hardware_id=name)
                      for r in self.wd.results(now)]
        if self.command_raw_mismatch:
            arr.status.append(status(
                f'{name}: command_raw type', DiagnosticStatus.ERROR,
                f'not gated (this node takes {GATED_TYPE}): {", ".join(self.command_raw_mismatch)}',
                {}, hardware_id=name))
        if self.command_rate_problem:
            arr.status.append(status(f'{name}: command_raw rate', DiagnosticStatus.ERROR,
                                     self.command_rate_problem, {}, hardware_id=name))
        arr.status.append(status(f'{name}: counters', bytes([0]), 'counts since start',
                                 dict(self.counts, trips=self.wd.latch.trips,
                                      frame_timeline_restarts=self.wd.frames.timeline_restarts,
                                      hold_reanchors=self.wd.hold_reanchors,
                                      watchdog_stalls=self.wd.frames.stalls),
                                 hardware_id=name))
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        self._running = False
        if getattr(self, '_last_sent', None) is not None:   # the robot has had our commands
            send_last_command(self, self._send_final_safe, self.period_s)
        thread = getattr(self, '_frame_thread', None)
        if thread is not None:
            with self._frame_slot:
                self._frame_slot.notify_all()
            thread.join(timeout=5.0)
        super().destroy_node()


def main(args=None):
    spin_nodes(lambda: [WatchdogNode()], args)
