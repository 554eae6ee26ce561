"""Chunk executor: publishes one command per control tick while the next chunk is computed.

Subscribes `action_chunk` (trajectory_msgs/JointTrajectory, header.stamp = observation time),
publishes `command_raw` (Float64MultiArray by default; JointTrajectory or TwistStamped as options
when no watchdog gates it),
`chunk_request` (a JointTrajectory whose points are the committed prefix, possibly none) and
`/diagnostics`. The scheduling logic is `core.chunk_scheduler`; this node adds the clock, topics and
the safe hold. All timing uses the node clock, so `use_sim_time` is honoured.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.action_range import ActionRange
from vla_edge.core.chunk_input import (
    MAX_CHUNK_TICKS,
    columns_by_name,
    onto_tick_grid,
    point_rate_hz,
)
from vla_edge.core.chunk_merge import STRATEGIES, MergeConfig
from vla_edge.core.chunk_scheduler import MODES, ChunkScheduler, SchedulerConfig, SchedulerStats
from vla_edge.core.errors import InputError, shown
from vla_edge.core.instruction_text import normalise_instruction
from vla_edge.core.manifest import Manifest
from vla_edge.nodes.messages import (
    COMMAND_TYPES,
    command_message,
    parse_request_id,
    request_id,
    status,
)
from vla_edge.nodes.model_rate import resolve_control_rate, tied_manifest
from vla_edge.nodes.node_lifecycle import (
    destroyed_if_refused,
    diagnostic_name,
    send_last_command,
)
from vla_edge.nodes.params import ParameterError, Spec, declare_all, distinct_names
from vla_edge.nodes.spin import spin_nodes
from vla_edge.nodes.trajectory_cdr import chunk_to_trajectory_cdr
from vla_edge.nodes.trajectory_view import read_trajectory
from vla_edge.nodes.twist_command import TWIST_PARAMETERS, command_twist

HOLD_MODES = ('last', 'zero_velocity', 'state')
# The clock going back more than this is a new timeline (a looped bag, a restarted sim), not a
# late timer: ticks are re-anchored. A smaller step back only drops a few more actions as past.
CLOCK_JUMP_BACK_S = 0.25

PARAMETERS = (
    Spec('control_rate_hz', 0.0, 'Executor tick rate. 0: the model manifest\'s control_rate_hz '
         '(model_dir), the rate the policy was trained for. At another rate, chunks are sampled '
         'at this one, linearly in time (chunks_resampled).', range=(0.0, 1000.0)),
    Spec('model_dir', '', 'Model folder whose manifest gives the control rate when '
         'control_rate_hz is 0, and whose action_names joint_names must match. Empty: '
         '$VLA_EDGE_MODEL_DIR or the packaged reference model (as vla_node) when control_rate_hz '
         'is 0; with a rate set, no model folder is read.'),
    Spec('mode', 'async', 'async: request the next chunk early, by the measured latency; sync: '
         'play each chunk to its end, then wait (baseline).', choices=MODES),
    Spec('merge.strategy', 'blend', 'How a new chunk joins the queued remainder of the '
         'old one.', choices=STRATEGIES),
    Spec('merge.blend_steps', 5, 'Ticks of cross-fade for the blend strategy (offset_fade: for '
         'the dims after the motion ones, e.g. the gripper).', range=(1, 200)),
    Spec('merge.fade_steps', 40, 'offset_fade (position targets): ticks over which the position '
         'offset between the old and the new chunk at a switch fades out.', range=(1, 1000)),
    Spec('merge.max_speed', 0.0, 'offset_fade: the robot\'s top speed along the position dims, '
         'in command units per second (the sim: 0.6 table units/s). Taking up the position '
         'offset at a switch never makes a tick\'s motion faster than this, so a switch is no '
         'rougher than the robot\'s fastest motion. 0: no limit. Other merges ignore it.',
         range=(0.0, 1000.0)),
    Spec('merge.ensemble_m', 0.5, 'temporal_ensemble: the newer prediction weighs exp(-m).',
         range=(0.0, 10.0)),
    Spec('latency.percentile', 95.0, 'Percentile of recent request-to-chunk latencies used to '
         'time requests.', range=(50.0, 100.0)),
    Spec('latency.window', 50, 'Number of recent latencies kept.', range=(1, 10000)),
    Spec('trigger_margin_ticks', 5, 'Extra ticks of lead when requesting the next chunk.',
         range=(0, 100)),
    Spec('max_action_age_s', 0.3, 'Also ask early enough that the next chunk lands by the time '
         'the current chunk\'s observation is this old, so the robot acts on a recent view of '
         'the scene. With inference latency of half this or more it replans continuously (one '
         'request in flight) and views reach twice the latency. 0.0: only the deadline (latency '
         '+ margin) triggers requests.', range=(0.0, 60.0)),
    Spec('request_timeout_s', 2.0, 'Ask again if a requested chunk has not arrived by then.',
         range=(0.01, 60.0)),
    Spec('hold_mode', 'zero_velocity', 'What to command when no action is queued: repeat the last '
         'command; zero the velocity dimensions (velocity interfaces); or state: the robot\'s '
         'measured position (joint_states, hold_state.joints) for the position dimensions '
         '(position interfaces: stay where it is, also after a reset or a teleport).',
         choices=HOLD_MODES),
    Spec('velocity_dims', [0, 1], 'Indices of the command that are velocities (zeroed on hold). '
         '[-1]: none (a position interface: use hold_mode state or last).'),
    Spec('position_dims', [-1], 'Indices of the command that are position targets (the motion '
         'dims of a position interface: switch smoothness and the offset_fade merge use them). '
         '[-1]: none. Motion dims (velocity_dims, then position_dims) lead the command.'),
    Spec('hold_state.joints', ['x', 'y', ''], 'hold_mode state: per command dim, the '
         'joint_states name whose position it holds; "" keeps the last command\'s value (a '
         'gripper). Every position dim needs one.'),
    Spec('hold_state.max_lag', 0.1, 'Position dims: when the robot is farther than this from '
         'the last target sent (it did not follow: paused, blocked, moved by hand, or teleported '
         'by a sim reset), drop the queue and the replies to earlier requests, and hold where it '
         'is (lost_track in diagnostics). Judged only on joint_states at most 3 control periods '
         'old. 0: off.', range=(0.0, 1e6)),
    Spec('hold_state.retry_after_s', 0.2, 'After losing track, hold this long before asking for '
         'the next chunk: a robot held by something else (a latched watchdog) would otherwise '
         'lose track again a few ticks into every chunk, and each one costs an inference.',
         range=(0.0, 60.0)),
    Spec('command_type', 'float64_multi_array', 'Message type of command_raw. With the watchdog '
         'in the chain keep float64_multi_array (what it gates) and set the robot\'s type as the '
         'watchdog\'s command_type.', choices=tuple(COMMAND_TYPES)),
    Spec('joint_names', ['vx', 'vy', 'grip'], 'Names of the command dimensions.'),
    *TWIST_PARAMETERS,
    Spec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', range=(0.05, 60.0)),
    Spec('smoothness_window_s', 120.0, 'The switch_discontinuity_ratio in diagnostics is over the '
         'control steps of this last while (a ring buffer: memory and cost stay the same however '
         'long the node runs).', range=(1.0, 600.0)),
    Spec('realtime_priority', 0, 'SCHED_FIFO priority (1-99) for the thread that runs the control '
         'timer, as ros2_control does on a robot; 0 keeps normal scheduling. Needs rtprio '
         'permission (limits.conf) on Linux; without it the node warns once and runs on.',
         range=(0, 99)),
    Spec('reset_on_new_instruction', True, 'A new instruction is a new task: drop the queued '
         'actions of the old one (hold until the first chunk for the new one arrives).'),
)


def check_command_layout(p: dict) -> None:
    """joint_names names the command's dimensions and velocity_dims indexes them: a hold zeroes
    exactly those, so an index out of range would zero the wrong one or none."""
    names, dims = list(p['joint_names']), index_list(p, 'velocity_dims')
    if not names or not distinct_names(names):
        raise ParameterError(f"parameter 'joint_names' = {names} must be distinct, non-empty "
                             'names, one per command dimension')
    if len(set(dims)) != len(dims) or not all(0 <= i < len(names) for i in dims):
        raise ParameterError(f"parameter 'velocity_dims' = {dims} must be distinct indices in "
                             f'[0, {len(names) - 1}] (joint_names has {len(names)} dimensions)')
    positions = index_list(p, 'position_dims')
    motion = sorted(dims + positions)
    if motion != list(range(len(motion))) or len(motion) > len(names):
        raise ParameterError(f"parameters 'velocity_dims' = {dims} and 'position_dims' = "
                             f'{list(p["position_dims"])} must be distinct leading indices of '
                             f'the command (0, 1, ...; joint_names has {len(names)})')
    if positions and p['hold_mode'] != 'state':
        raise ParameterError(f"parameter 'hold_mode' = {p['hold_mode']!r}: with position_dims "
                             "use 'state' (hold where joint_states says the robot is): the last "
                             'command is zeroed at a reset, and before the first chunk there is '
                             'none, so a held position target would be the origin')
    joints = list(p['hold_state.joints'])
    if p['hold_mode'] == 'state' and (len(joints) != len(names) or not any(joints)
                                      or not all(joints[i] for i in positions)):
        raise ParameterError(f"parameter 'hold_state.joints' = {joints} must name a joint (or "
                             f'"") for each of the {len(names)} command dimensions, a joint for '
                             f'every position dim {positions}, for hold_mode state')
    if positions and p.get('command_type') == 'twist_stamped':
        raise ParameterError("parameter 'command_type' = 'twist_stamped' carries velocities; "
                             'position_dims are targets (use float64_multi_array or '
                             'joint_trajectory)')
    strategy = p.get('merge.strategy')
    if positions and strategy == 'prefix_inpaint':
        raise ParameterError("parameter 'merge.strategy' = 'prefix_inpaint' commits the model's "
                             'velocity actions; with position_dims use offset_fade or blend')
    if not positions and strategy == 'offset_fade':
        raise ParameterError("parameter 'merge.strategy' = 'offset_fade' fades a position offset; "
                             'on velocity commands it would keep the old velocity for '
                             'merge.fade_steps ticks (use blend), or set position_dims')


def index_list(p: dict, key: str) -> list[int]:
    """An index list parameter as indices; [-1] is none (ROS 2 parameters cannot carry an
    empty list)."""
    dims = [int(i) for i in p[key]]
    return [] if dims == [-1] else dims


def check_joint_names_against_model(names: list[str], manifest: Manifest | None) -> None:
    """Chunks are taken by joint name (core/chunk_input.py): names that are not the model's
    action names would have every chunk refused. Checked at start-up against the model the
    executor is tied to (`tied_manifest`)."""
    model = [] if manifest is None else [str(n) for n in manifest.raw.get('action_names') or ()]
    if model and sorted(model) != sorted(names):
        raise ParameterError(f"parameter 'joint_names' = {names} must name the model's actions "
                             f'{model} (manifest action_names): chunks are matched by name, so '
                             'every chunk would be refused')


class ChunkExecutor(Node):
    """Fixed-rate command stream from chunks; see the module docstring."""

    @destroyed_if_refused
    def __init__(self, **kwargs):
        super().__init__('chunk_executor', **kwargs)
        p = declare_all(self, PARAMETERS)
        check_command_layout(p)
        manifest = tied_manifest(p['control_rate_hz'], p['model_dir'])
        # Position targets are integrated from the model's actions by vla_node
        # (command_interface position): the robot's names and values, not the model's.
        self._position_dims = index_list(p, 'position_dims')
        targets = bool(self._position_dims)
        if not targets:
            check_joint_names_against_model(list(p['joint_names']), manifest)
        p['control_rate_hz'] = resolve_control_rate(p['control_rate_hz'], p['model_dir'],
                                                    manifest)
        # Tied to a model: its chunks can only hold its actions (core/action_range.py).
        self.action_range = None if manifest is None or targets else ActionRange.of_model(
            manifest, list(p['joint_names']))
        self.params = p
        self.scheduler = ChunkScheduler(SchedulerConfig(
            control_rate_hz=p['control_rate_hz'], mode=p['mode'],
            merge=MergeConfig(p['merge.strategy'], p['merge.blend_steps'], p['merge.ensemble_m'],
                              p['merge.fade_steps'],
                              max_step=p['merge.max_speed'] / p['control_rate_hz']),
            trigger_margin_ticks=p['trigger_margin_ticks'],
            latency_window=p['latency.window'], latency_percentile=p['latency.percentile'],
            request_timeout_s=p['request_timeout_s'], max_action_age_s=p['max_action_age_s'],
            motion_dims=len(index_list(p, 'velocity_dims') + self._position_dims),
            smoothness_window_s=p['smoothness_window_s']))
        self.rate_hz = p['control_rate_hz']
        self.joint_names = list(p['joint_names'])
        self.twist = command_twist(p, len(self.joint_names))
        self._lock = threading.Lock()
        self._t0_s: float | None = None
        self._last_tick_s: float | None = None
        self._last_tick = -1
        self._request_s: float | None = None
        self._skip_next_sample = False   # after a timeout, a reply without an id is ambiguous
        self._epoch = 0                  # bumped by every reset: older replies are discarded
        self._request_seq = 0
        self.discarded_after_reset = 0
        self.clock_jumps_back = 0    # the node clock went back (a looped bag's /clock): re-anchored
        self.chunks_refused = 0      # malformed: no points, NaN, other joints, bad times
        self.chunks_resampled = 0    # planned for another rate (or uneven): sampled at ours
        self._last_command = np.zeros(len(self.joint_names))
        self.last_command_was_hold = True   # what the command being published is (for taps)
        self.realtime_priority_applied: int | None = None   # set by the first tick
        self._tick_thread: int | None = None                 # the thread that tick ran on
        self.periods_s: list[float] = []
        self.executed: list[tuple[float, np.ndarray | None]] = []   # for reports and tests
        self.events: list[tuple[str, float]] = []                    # ('request'|'arrival', t)
        self.record_trace = False

        self.command_pub = self.create_publisher(COMMAND_TYPES[p['command_type']], 'command_raw',
                                                 10)
        self.request_pub = self.create_publisher(JointTrajectory, 'chunk_request', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # raw: the bytes, read with numpy (trajectory_view.py), not 50 rosidl points built on
        # the control loop's thread
        self.create_subscription(JointTrajectory, 'action_chunk', self.on_chunk, 10,
                                 callback_group=MutuallyExclusiveCallbackGroup(), raw=True)
        self.timer = self.create_timer(1.0 / self.rate_hz, self.on_tick,
                                       callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.create_service(Trigger, '~/reset', self.on_reset)
        self._instruction: str | None = None
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, 'instruction', self.on_instruction, latched)
        self._measured: dict[str, float] = {}   # joint -> newest position (hold_mode state)
        self._measured_s: float | None = None    # when the newest joint_states arrived
        self._hold_at: np.ndarray | None = None  # the held command, latched when a hold starts
        self.holds_without_state = 0
        self.lost_track = 0   # position dims: the robot was not where the targets were
        self._retry_at_s = float('-inf')   # no chunk is asked for before this (after lost track)
        if p['hold_mode'] == 'state':
            self.create_subscription(JointState, 'joint_states', self.on_state, 10,
                                     callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f'chunk executor: {p["mode"]} at {self.rate_hz:g} Hz, merge '
                               f'{p["merge.strategy"]}, command {p["command_type"]}')

    # -- time ----------------------------------------------------------------------------------
    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def tick_of(self, t_s: float) -> int:
        return int(round((t_s - self._t0_s) * self.rate_hz))

    # -- callbacks -----------------------------------------------------------------------------
    def on_chunk(self, msg: JointTrajectory | bytes) -> None:
        try:
            chunk = read_trajectory(msg)
            if chunk.n_points > MAX_CHUNK_TICKS:   # refused before resampling it in a callback
                raise ValueError(f'it has {chunk.n_points} points (limit {MAX_CHUNK_TICKS})')
            actions = columns_by_name(chunk.actions(), chunk.joint_names, self.joint_names)
            if not np.all(np.isfinite(actions)):
                raise ValueError('it has NaN/inf values')
            problem = None if self.action_range is None else self.action_range.problem(actions)
            if problem is not None:
                raise ValueError(problem)
            times = chunk.times_s
            actions, resampled = onto_tick_grid(actions, times, self.rate_hz)
        except ValueError as exc:
            self.chunks_refused += 1
            self.get_logger().error(f'ignoring action_chunk: {exc}', throttle_duration_sec=1.0)
            return
        if resampled:
            self.chunks_resampled += 1
            if self.chunks_resampled == 1:
                planned = point_rate_hz(times)
                self.get_logger().info(
                    'action_chunk points are not 1/control_rate apart'
                    + (f' (planned for {planned:.3g} Hz)' if planned else '')
                    + f': sampling chunks at this executor\'s {self.rate_hz:g} Hz, linearly in '
                    'time (chunks_resampled in /diagnostics)')
        now = self.now_s()
        obs_s = chunk.stamp_s
        answered = parse_request_id(chunk.frame_id)
        with self._lock:
            if self._t0_s is None:
                return
            if answered is not None and answered[0] != self._epoch:
                self.discarded_after_reset += 1   # planned for the scene before a reset
                return
            # A reply to a request that timed out and was sent again: use its actions, but the
            # re-sent request is still the pending one (and its latency is still unknown).
            current = answered is None or answered[1] == self._request_seq
            latency = None
            if current and self._request_s is not None and (
                    answered is not None or not self._skip_next_sample):
                latency = now - self._request_s   # one sample per request
            if current:
                self._request_s = None
                self._skip_next_sample = False
            obs_tick = max(0, self.tick_of(obs_s))
            tick = max(self.tick_of(now), self._last_tick + 1)
            past = self.scheduler.chunk_arrived(actions, min(obs_tick, tick), tick, latency,
                                                answers_pending=current)
            if self.record_trace:
                self.events.append(('arrival', now))
        if past == len(actions):
            self.get_logger().warning(
                f'action_chunk observed {now - obs_s:.3f} s ago: all {past} actions were past on '
                'arrival, nothing to execute (inference slower than a chunk, or camera stamps '
                'not on this node\'s clock)', throttle_duration_sec=5.0)

    @property
    def position_dims(self) -> list[int]:
        """The command dims that are position targets (none on velocity commands)."""
        return list(self._position_dims)

    def on_tick(self) -> None:
        if self.realtime_priority_applied is None:
            self.realtime_priority_applied = self._apply_realtime_priority()
            self._tick_thread = threading.get_ident()
        elif self.realtime_priority_applied and threading.get_ident() != self._tick_thread:
            self._tick_thread = threading.get_ident()
            self.get_logger().warning(
                'the control timer ran on another thread than the one set to SCHED_FIFO: this '
                'node shares a multi-threaded executor, so its ticks run at normal priority and '
                'other callbacks at real-time priority. Give the executor its own executor '
                '(vla-edge bringup does; in rclcpp, a component_container_isolated).',
                throttle_duration_sec=60.0)
        now = self.now_s()
        with self._lock:
            if self._last_tick_s is not None and now < self._last_tick_s - CLOCK_JUMP_BACK_S:
                self._restart_timeline(now)
            if self._t0_s is None:
                # Anchor tick 0 to the timer's schedule, not to this (possibly late) first call,
                # so that a callback a little late still maps to its own tick.
                period = 1.0 / self.rate_hz
                until_next = self.timer.time_until_next_call()
                self._t0_s = now - period + (until_next * 1e-9 if until_next is not None
                                             else period)
            if self._last_tick_s is not None:
                self.periods_s.append(now - self._last_tick_s)
                del self.periods_s[:-5000]
            self._last_tick_s = now
            tick = max(self.tick_of(now), self._last_tick + 1)   # never repeat a tick
            self._last_tick = tick
            if self._position_dims and self._robot_lost(now):
                self._lose_track(now)
            timeouts = self.scheduler.stats.timeouts
            if now >= self._retry_at_s and self.scheduler.wants_chunk(tick):
                self._skip_next_sample = self.scheduler.stats.timeouts > timeouts
                self._send_request(tick)
            action = self.scheduler.next_action(tick)
            self.last_command_was_hold = action is None
            if action is not None:
                self._hold_at = None   # a hold after this one starts where the robot is then
            command = self._hold() if action is None else action
            if command is None:   # hold_mode state, no robot state yet: send nothing
                return
            self._last_command = np.asarray(command, dtype=np.float64)
            if self.record_trace:
                self.executed.append((now, None if action is None else self._last_command))
        self._publish_command(self._last_command, now)

    def _send_request(self, tick: int) -> None:
        """Stamped with the exact time of `tick`, where the committed prefix starts."""
        tick_s = self._t0_s + tick / self.rate_hz
        prefix = self.scheduler.committed_prefix(tick)
        self._request_seq += 1
        # Serialized bytes, on the control loop's thread: no rosidl point per committed action.
        self.request_pub.publish(chunk_to_trajectory_cdr(
            np.zeros((0, len(self.joint_names))) if prefix is None else prefix, tick_s,
            self.rate_hz, self.joint_names, request_id(self._epoch, self._request_seq)))
        self.scheduler.request_sent(tick)
        self._request_s = self.now_s()
        if self.record_trace:
            self.events.append(('request', self._request_s))

    def reset_queue(self):
        """Drop the queue and start new counters (a new episode or task); keep the latency
        estimate, which describes the machine, not the episode. Returns the old counters.

        A chunk requested before the reset and landing after it is discarded by its request id
        (not by its observation stamp: frames reach vla_node late on a loaded machine, so fresh
        chunks can look older than the reset)."""
        with self._lock:
            old = self._drop_queue()
            # Velocity dims stop; a held position is read from joint_states again; the other
            # dims (a gripper) stay as commanded with position targets, where 0 is a position.
            command = self._last_command.copy()   # a new array: the trace and the dropped queue
            if self._position_dims:                # may hold the old one
                # Where the robot is, not 0: a zero target would also read as a lost robot.
                joints = self.params['hold_state.joints']
                for i in self._position_dims:
                    command[i] = self._measured.get(joints[i], command[i])
            else:
                command[:] = 0.0
            self._last_command = command
            self._hold_at = None
            self._retry_at_s = float('-inf')
            return old

    def _drop_queue(self, keep_stats: bool = False) -> SchedulerStats:
        """New queue (and counters, unless `keep_stats`); replies to earlier requests discarded
        (a new epoch); the latency estimate kept. Returns the old counters. Call with the lock
        held."""
        self._epoch += 1
        old = self.scheduler.stats
        self.scheduler = ChunkScheduler(self.scheduler.cfg, latency=self.scheduler.latency)
        if keep_stats:
            self.scheduler.stats = old
        self._request_s = None
        self._skip_next_sample = False
        return old

    def _restart_timeline(self, now: float) -> None:
        """The clock went back (a bag played in a loop, a sim restarted, under use_sim_time):
        ticks counted on the old timeline would hold the robot until the clock caught up with
        them, and chunks stamped on it mean nothing now. Drop the queue and requests in flight,
        keep the latency estimate, and count ticks from here. The last command stays what a
        hold repeats (the robot has not moved because the clock did). The counters start again,
        as after a reset. Call with the lock held."""
        self.get_logger().warning(
            f'the clock went back {self._last_tick_s - now:.3f} s: queue dropped, ticks counted '
            'from now (clock_jumps_back in /diagnostics)', throttle_duration_sec=1.0)
        self.clock_jumps_back += 1
        self._drop_queue()
        self._t0_s = None
        self._last_tick_s = None
        self._last_tick = -1
        self._retry_at_s = float('-inf')   # a time on the old timeline: it would hold for good
        self._measured_s = None            # likewise: judge lost track again on fresh states

    def on_state(self, msg: JointState) -> None:
        """hold_mode state: keep the newest measured position of each joint the hold uses."""
        wanted = set(self.params['hold_state.joints'])
        newest = {n: float(v) for n, v in zip(msg.name, msg.position)
                  if n in wanted and np.isfinite(v)}
        with self._lock:
            self._measured.update(newest)
            self._measured_s = self.now_s()

    def on_instruction(self, msg: String) -> None:
        """Without this, up to a chunk of the old task's actions would still run in the new one.
        An instruction vla_node would refuse (empty, too long) is not a new task: it is ignored."""
        try:
            key = normalise_instruction(msg.data)   # as vla_node compares them: case, spacing
        except InputError as exc:
            self.get_logger().warning(f'instruction ignored, queue kept: {exc}')
            return
        changed = self._instruction is not None and key != self._instruction
        self._instruction = key
        if changed and self.params['reset_on_new_instruction']:
            old = self.reset_queue()
            self.get_logger().info(f'new instruction {shown(key)}: queue dropped '
                                   f'({old.chunks_received} chunks before)')

    def on_reset(self, request, response):
        old = self.reset_queue()
        response.success = True
        response.message = (f'queue cleared ({old.chunks_received} chunks, {old.stalled_ticks} '
                            'stalled ticks before)')
        return response

    def destroy_node(self) -> None:
        """The last command is the hold with zero velocity (in either hold_mode), not whatever
        action was playing: without the watchdog this node is what the robot listens to."""
        if getattr(self, '_last_tick_s', None) is not None:   # commands went out
            with self._lock:
                final = self._hold(final=True)
            if final is not None:
                send_last_command(self, lambda: self._publish_command(final, self.now_s()),
                                  1.0 / self.rate_hz)
        super().destroy_node()

    def _apply_realtime_priority(self) -> int:
        """Move the thread running the control timer to SCHED_FIFO (Linux: per thread). Other
        processes on the same cores are what delays the timer (measured: p99 1.3-3.1 ms at
        100 Hz beside inference, 0.16 ms with SCHED_FIFO 50; README). Returns what applies."""
        wanted = self.params['realtime_priority']
        if wanted <= 0:
            return 0
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(wanted))
        except (AttributeError, OSError) as exc:   # not Linux, or no rtprio permission
            self.get_logger().warning(
                f'could not run the control loop at SCHED_FIFO priority {wanted} ({exc}); '
                'running with normal scheduling, so other load can delay ticks. Grant rtprio '
                '(e.g. "@realtime - rtprio 98" in /etc/security/limits.conf) or set '
                'realtime_priority to 0 to silence this.')
            return 0
        self.get_logger().info(f'control loop at SCHED_FIFO priority {wanted}')
        return wanted

    @contextlib.contextmanager
    def locked_queue(self) -> Iterator[tuple[ChunkScheduler, int]]:
        """(scheduler, next tick to execute) with the control loop paused between two ticks:
        for tools that inspect or edit the queue (fault injection), never from a callback."""
        with self._lock:
            yield self.scheduler, self._last_tick + 1

    def queued_ticks(self) -> int:
        """Actions queued from the next tick on."""
        with self.locked_queue() as (scheduler, tick):
            return scheduler.queue.remaining(tick)

    def _robot_lost(self, now: float) -> bool:
        """Position dims: is the robot (by fresh joint_states) farther than hold_state.max_lag
        from the last target sent? Call with the lock held."""
        limit = self.params['hold_state.max_lag']
        if limit <= 0.0 or self._measured_s is None or now - self._measured_s > 3.0 / self.rate_hz:
            return False
        joints = self.params['hold_state.joints']
        gaps = [abs(self._last_command[i] - self._measured[joints[i]])
                for i in self._position_dims if joints[i] in self._measured]
        return bool(gaps) and max(gaps) > limit

    def _lose_track(self, now: float) -> None:
        """The targets and the robot parted: their queue (and chunks already requested) would
        pull it toward where the plan thought it was. Drop them and hold where it is; the next
        chunk, asked for hold_state.retry_after_s later, is planned from there. Call with the
        lock held."""
        self.lost_track += 1
        if now >= self._retry_at_s:   # a wait already running is not pushed further on
            self._retry_at_s = now + self.params['hold_state.retry_after_s']
        self.get_logger().warning(
            f'the robot is more than hold_state.max_lag = {self.params["hold_state.max_lag"]:g} '
            'from its last target (paused, blocked, moved, or reset): queue dropped, holding '
            'where it is (lost_track in /diagnostics)', throttle_duration_sec=2.0)
        self._drop_queue(keep_stats=True)
        self._hold_at = None

    def _hold(self, final: bool = False) -> np.ndarray | None:
        """Never stale, never undefined: the last command, zero velocity, or where the robot
        is. The `final` one (the node stops; nothing follows) zeroes the velocity dimensions in
        every mode. None: hold_mode state before any joint_states arrived (nothing is sent,
        rather than a position the robot is not at)."""
        held = self._last_command.copy()
        if final or self.params['hold_mode'] in ('zero_velocity', 'state'):
            held[index_list(self.params, 'velocity_dims')] = 0.0
        if self.params['hold_mode'] == 'state':
            if self._hold_at is not None:   # latched: a target that followed the measured
                return self._hold_at.copy()  # position would let an arm creep (sag, noise)
            joints = self.params['hold_state.joints']
            if not all(j in self._measured for j in joints if j):
                self.holds_without_state += 1
                self.get_logger().warning('no joint_states with the hold joints '
                                          f'{[j for j in joints if j]} yet: no command sent',
                                          throttle_duration_sec=2.0)
                return None
            for i, joint in enumerate(joints):
                if joint:
                    held[i] = self._measured[joint]
            if not final:
                self._hold_at = held.copy()
        return held

    def _publish_command(self, command: np.ndarray, now: float) -> None:
        self.command_pub.publish(command_message(self.params['command_type'], command, now,
                                                 self.joint_names, self.twist))

    # -- diagnostics ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, float]:
        with self._lock:
            st = self.scheduler.stats
            periods = np.array(self.periods_s[-1000:])
            tick = self.tick_of(self.now_s()) if self._t0_s is not None else 0
            jitter = np.abs(periods - 1.0 / self.rate_hz) if len(periods) else np.zeros(1)
            return {
                'queue_depth': self.scheduler.queue.remaining(tick),
                'chunks_received': st.chunks_received,
                'stalled_ticks': st.stalled_ticks,
                'startup_wait_ticks': st.startup_wait_ticks,
                'dropped_actions': st.dropped_actions,
                'chunks_all_past': st.chunks_all_past,
                'request_timeouts': st.timeouts,
                'discarded_after_reset': self.discarded_after_reset,
                'clock_jumps_back': self.clock_jumps_back,
                'chunks_refused': self.chunks_refused,
                'holds_without_state': self.holds_without_state,
                'lost_track': self.lost_track,
                'chunks_resampled': self.chunks_resampled,
                f'latency_p{self.params["latency.percentile"]:g}_ms':
                    self.scheduler.latency.estimate_s() * 1e3,
                'jitter_p99_ms': float(np.percentile(jitter, 99) * 1e3),
                'realtime_priority': self.realtime_priority_applied or 0,
                'switch_discontinuity_ratio': st.switch_discontinuity_ratio,
            }

    def publish_diagnostics(self) -> None:
        values = self.snapshot()
        level, message = DiagnosticStatus.OK, 'executing'
        if values['stalled_ticks'] > 0:
            level, message = DiagnosticStatus.WARN, f'{values["stalled_ticks"]} stalled ticks'
        if values['chunks_received'] == 0:
            level, message = DiagnosticStatus.WARN, 'waiting for the first chunk'
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status(f'{diagnostic_name(self)}: chunk executor', level, message,
                             {k: f'{v:.3f}' if isinstance(v, float) else v
                              for k, v in values.items()})]
        self.diag_pub.publish(arr)


def main(args=None):
    spin_nodes(lambda: [ChunkExecutor()], args)
