"""vla_node: camera + instruction + robot state in, action chunks out.

Two plain threads do the heavy work, handing results over through lock-protected latest-value
slots, so subscriptions stay responsive:
- the vision thread encodes the newest frame (older unprocessed frames are overwritten, never
  queued) and keeps the newest visual embedding with its stamp; a frame showing the same scene
  as the last one encoded is not encoded again (`core/key_frame.py`): that embedding is
  re-stamped with the frame's time;
- the action thread waits for a `chunk_request` from the executor, plans a chunk from the newest
  embedding, the cached instruction embedding and the robot state of that frame's instant
  (`state_pairing`; keeping the request's committed prefix fixed), and publishes it on
  `action_chunk` stamped with the observation time and carrying the request's id
  (header.frame_id) back to the executor.
Bad inputs (unsupported encodings, NaN states, a joint named twice, a missing instruction) are
logged and skipped, each kind counted (errors_<kind>) and logged at most every 2 s; an unusable
instruction (empty, over 1000 characters) is ignored and the current task kept. The executor
holds the robot safely meanwhile.

Over 400 lines on purpose: the two threads, the callbacks that feed them and the locks between
them are one piece, and reading them apart would hide who holds what. Parameters are in
vla_node_params.py, the logic in core (runtime, key_frame, state_history, committed_prefix).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.chunk_input import columns_by_name, onto_tick_grid
from vla_edge.core.committed_prefix import align_prefix
from vla_edge.core.errors import InputError, VlaEdgeError, shown
from vla_edge.core.instruction_text import normalise_instruction
from vla_edge.core.joint_state import state_vector
from vla_edge.core.key_frame import KeyFrameGate
from vla_edge.core.latency import LatencyTracker
from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.onnx_session import SessionOptions
from vla_edge.core.position_targets import velocity_chunk_to_positions
from vla_edge.core.ros_image import ImageConverter
from vla_edge.core.runtime import PolicyRuntime, VisualEmbedding
from vla_edge.core.state_history import StateHistory
from vla_edge.nodes.camera_input import subscribe_camera
from vla_edge.nodes.messages import (
    NO_POINTS,
    parse_request_id,
    stamp_to_s,
    status,
)
from vla_edge.nodes.node_lifecycle import destroyed_if_refused, diagnostic_name
from vla_edge.nodes.params import declare_all
from vla_edge.nodes.spin import spin_nodes
from vla_edge.nodes.trajectory_cdr import chunk_to_trajectory_cdr
from vla_edge.nodes.trajectory_view import TrajectoryView, read_trajectory
from vla_edge.nodes.vla_node_params import (
    PARAMETERS,
    check_position_targets,
    check_state_joints,
)

NO_TIMES = np.empty(0)
ERROR_LOG_PERIOD_S = 2.0   # an input problem of one kind is logged at most this often

# A stamp farther than this from the node's clock is taken to come from another clock (device
# time, a sim that restarted): it cannot be compared with the node's times or other stamps.
SAME_CLOCK_S = 1.0


def on_same_clock(stamp_s: float, now_s: float) -> bool:
    return abs(now_s - stamp_s) < SAME_CLOCK_S


def deterministic_seed(noise_seed: int, observation_stamp_s: float) -> int:
    """Noise seed of a chunk in deterministic mode: keyed to the observation it was planned from,
    not to how many chunks came before, so two replays that plan from the same frames match even
    if a loaded machine skipped a different frame in each (with the key-frame gate on, a frame's
    embedding also depends on which earlier frame anchored it: lockstep replay feeds every frame,
    so the anchors match too)."""
    return (noise_seed * 1_000_003 + int(round(observation_stamp_s * 1e6))) % (2**31 - 1)


class VlaNode(Node):
    """Policy node: vision and action threads over the ONNX runtime."""

    # rclpy's EventsExecutor dispatches in C++: each frame reaches the vision thread sooner and
    # the executor holds the GIL less while the threads need it (`executor_kind_for`).
    preferred_executor = 'events'

    @destroyed_if_refused
    def __init__(self, runtime: PolicyRuntime | None = None, **kwargs):
        super().__init__('vla_node', **kwargs)
        p = declare_all(self, PARAMETERS)
        check_state_joints(p)
        self.params = p
        self.runtime = runtime or PolicyRuntime(
            p['model_dir'] or default_model_dir(),
            SessionOptions(tuple(p['providers']), p['intra_op_threads']))
        m = self.runtime.manifest
        n_state = len(p['state_position_joints']) + len(p['state_velocity_joints'])
        if n_state != m.state_dim:
            raise ValueError(f'state_position_joints + state_velocity_joints name {n_state} values '
                             f'but the model expects state_dim = {m.state_dim} '
                             f'({m.raw.get("state_names")})')
        check_position_targets(p, m.action_dim, m.state_dim)
        self.rate_hz = m.control_rate_hz
        # Chunks name their columns so the executor takes them by name; a model without
        # action_names publishes none, and the executor takes the columns in order.
        self.action_names = [str(n) for n in m.raw.get('action_names') or ()]
        self.positions = p['command_interface'] == 'position'
        self.chunk_names = list(p['position.joint_names']) if self.positions \
            else self.action_names
        self.converter = ImageConverter()
        self._frame_lock = threading.Condition()
        self._frame: tuple[object, float, int, bool] | None = None   # msg, stamp, index, clock ok
        self._slot_lock = threading.Lock()
        self._visual: VisualEmbedding | None = None
        self._visual_frame: tuple[int, bool] = (0, True)   # its frame's receive index, clock ok
        self._states = StateHistory(p['state_history_s'])
        self.state_offsets_s: deque[float] = deque(maxlen=200)   # paired state - frame stamp
        self.state_arrival_ages_s: deque[float] = deque(maxlen=200)   # arrival - stamp
        self._instruction: str = p['instruction']
        self._request = threading.Condition()
        self._pending_request: TrajectoryView | None = None
        self._request_epoch: int | None = None
        self._fresh_after_s = float('-inf')   # frames older than this show the pre-reset scene
        self._fresh_after_index = 0             # ... and frames received up to this one
        self._fresh_wait_since: float | None = None
        self._running = True
        self._stopping = threading.Event()
        self._chunks = 0
        self._serving = False   # a request is being planned (or in its emulated latency)
        self._errors: dict[str, int] = {}
        self._error_logged: dict[str, float] = {}   # kind -> when last logged (monotonic)
        self.stage_latency = {s: LatencyTracker(window=200, percentile=95, discard_first=1)
                              for s in ('vision_encoder', 'backbone', 'action_expert')}
        self.frames_received = 0
        self.frames_off_clock = 0   # stamped more than SAME_CLOCK_S from this node's clock
        self.frames_encoded = 0
        self.frames_skipped_unchanged = 0   # key-frame gate: the scene had not changed
        self._key_frames = KeyFrameGate(p['key_frame_min_change'], p['key_frame_max_interval_s'])
        self._anchor_frame: tuple[int, float, bool] | None = None   # its index, stamp, clock ok
        # per chunk: observation stamp, raw ONNX seconds (vision + backbone + expert), published
        self.chunk_records: list[tuple[float, float, float]] = []

        subscribe_camera(self, p['camera_topic'], p['use_compressed'], self.on_frame)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, 'instruction', self.on_instruction, latched)
        self.create_subscription(JointState, 'joint_states', self.on_state, 10)
        self.create_subscription(JointTrajectory, 'chunk_request', self.on_request, 10,
                                 raw=True)   # bytes, read with numpy: trajectory_view.py
        self.chunk_pub = self.create_publisher(JointTrajectory, 'action_chunk', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics)
        self._threads = [threading.Thread(target=self._vision_loop, name='vision', daemon=True),
                         threading.Thread(target=self._action_loop, name='action', daemon=True)]
        for t in self._threads:
            t.start()
        self.get_logger().info(
            f'vla_node: model {m.name!r}, image backend {self.converter.backend}, '
            f'emulated latency {p["emulated_latency_s"]:g} s')

    def now_s(self) -> float:
        """The node's clock (sim time when use_sim_time is set), in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    # -- subscriptions: store the newest value, nothing heavy ------------------------------------
    def on_frame(self, msg) -> None:
        self.frames_received += 1
        stamp = stamp_to_s(msg.header.stamp)
        # A stamp far from this node's clock comes from another clock (device time, a sim that
        # restarted): then only the receive order can tell frames before a reset from after.
        now_s = self.now_s()
        comparable = on_same_clock(stamp, now_s)
        if not comparable:
            self._off_clock_note(stamp, now_s)
        with self._frame_lock:
            self._frame = (msg, stamp, self.frames_received, comparable)
            self._frame_lock.notify()

    def _off_clock_note(self, stamp_s: float, now_s: float) -> None:
        """Chunks carry the frame's stamp; the executor and the watchdog judge age by it on their
        own clocks, so a camera on another clock makes every action look stale. Say so once."""
        self.frames_off_clock += 1
        if self.frames_off_clock == 1:
            effect = ('the executor will drop actions as already past and the watchdog will '
                      'call frames stale' if stamp_s < now_s else
                      'the executor cannot tell which actions are past')
            self.get_logger().warning(
                f'camera stamps are {stamp_s - now_s:+.3f} s from this node\'s clock: {effect}. '
                'Stamp frames with ROS time (driver setting), or set use_sim_time alike on all '
                'nodes (frames_off_clock in /diagnostics)')

    def on_instruction(self, msg: String) -> None:
        """An instruction the encoder would refuse does not replace the one in use."""
        try:
            normalise_instruction(msg.data)
        except InputError as exc:
            self._error('instruction', f'instruction refused, still doing '
                                       f'{shown(self._instruction)}: {exc}')
            return
        with self._slot_lock:
            self._instruction = msg.data
        self.get_logger().info(f'instruction: {shown(msg.data)}')

    def on_state(self, msg: JointState) -> None:
        try:
            state = self._state_vector(msg)
        except ValueError as exc:
            self._error('state', str(exc))
            return
        # Stamped as the frames are: by the driver, on this node's clock; an unstamped message
        # or one from another clock is placed at its arrival.
        now_s = self.now_s()
        stamp = stamp_to_s(msg.header.stamp)
        if stamp == 0.0 or not on_same_clock(stamp, now_s):
            stamp = now_s
        else:
            # A clock a little off (< 1 s) would pass unnoticed and mis-pair every frame by
            # that much: how old states are on arrival shows it.
            age = now_s - stamp
            self.state_arrival_ages_s.append(age)
            if abs(age) > self.params['state_max_offset_s']:
                self._error('state_clock', f'joint_states arrive {age:+.3f} s after their stamps '
                            '(lagging, or stamped on a clock ahead of or behind this node\'s): '
                            'frames are paired with the states their stamps say')
        with self._slot_lock:
            self._states.add(stamp, state)

    def _paired_state(self, visual: VisualEmbedding | None, comparable: bool
                      ) -> tuple[np.ndarray | None, float | None]:
        """(the state for this frame, its stamp minus the frame's) (call under _slot_lock): see
        `state_pairing`. The offset is None where no pairing by time was made."""
        if visual is None or self.params['state_pairing'] == 'newest' or not comparable:
            return self._states.newest(), None
        found = self._states.at(visual.stamp_s)
        return (None, None) if found is None else found

    def _note_state_offset(self, offset_s: float | None) -> None:
        if offset_s is None:
            return
        self.state_offsets_s.append(offset_s)
        if abs(offset_s) > self.params['state_max_offset_s']:
            self._error('state_offset', f'the joint state nearest to the frame is {offset_s:+.3f} '
                                        's from it (joint_states lagging or stalled, or on another '
                                        'clock than the camera?)')

    def on_request(self, msg: JointTrajectory | bytes) -> None:
        try:
            request = read_trajectory(msg)
        except ValueError as exc:
            self._error('request', f'chunk_request ignored: {exc}')
            return
        self._take_request(request)

    def _take_request(self, request: TrajectoryView) -> None:
        """The newest request replaces any still waiting; the action thread plans for it."""
        answered = parse_request_id(request.frame_id)
        with self._request:
            if answered is not None and answered[0] != self._request_epoch:
                if self._request_epoch is not None:
                    # The executor reset (new episode or task) at about this request's time;
                    # frames received so far (same thread: on_frame) show the old scene.
                    self._fresh_after_s = request.stamp_s
                    self._fresh_after_index = self.frames_received
                    self._fresh_wait_since = None
                self._request_epoch = answered[0]
            self._pending_request = request
            self._request.notify()

    # -- threads ---------------------------------------------------------------------------------
    def _vision_loop(self) -> None:
        while self._running:
            with self._frame_lock:
                while self._frame is None and self._running:
                    self._frame_lock.wait(timeout=0.1)
                if not self._running:
                    return
                msg, stamp, index, comparable = self._frame
                self._frame = None
            try:
                rgb = self.converter.to_rgb(msg)
                if self._anchor_predates_reset():
                    self._key_frames.reset()   # a chunk after a reset sees pixels taken after it
                check = self._key_frames.assess(rgb, stamp)
                reuse = not check.encode and self._visual is not None
                # An unchanged scene: the anchor's embedding, at this frame's time.
                visual = (replace(self._visual, stamp_s=stamp, encode_s=0.0) if reuse
                          else self.runtime.encode_image(rgb, stamp))
            except VlaEdgeError as exc:
                self._error('frame', f'dropping frame: {exc}')
                continue
            except Exception as exc:   # never let the thread die: log, drop the frame, go on
                if not self._running or not self.context.ok():
                    return   # destroyed or shut down under us: nothing to report
                self._error('vision_failure', f'vision stage failed ({type(exc).__name__}: '
                                              f'{exc}); frame dropped')
                continue
            with self._slot_lock:
                self._visual, self._visual_frame = visual, (index, comparable)
            if reuse:
                self.frames_skipped_unchanged += 1
            else:
                self._key_frames.anchor(check, stamp)
                self._anchor_frame = (index, stamp, comparable)
                self.stage_latency['vision_encoder'].add(visual.encode_s)
                self.frames_encoded += 1
            if self.params['plan_on_frame']:   # a request of its own: no id, no prefix
                self._take_request(TrajectoryView(stamp, '', (), NO_TIMES, None, NO_POINTS))

    def _anchor_predates_reset(self) -> bool:
        """True when the key-frame anchor is not a fresh frame by `_needs_fresher_frame`'s rule:
        a frame skipped against it would pass as fresh while showing pre-reset pixels."""
        if self._anchor_frame is None:
            return False
        index, stamp_s, comparable = self._anchor_frame
        with self._request:
            return index <= self._fresh_after_index or (comparable and
                                                        stamp_s < self._fresh_after_s)

    def _action_loop(self) -> None:
        while self._running:
            with self._request:
                while self._pending_request is None and self._running:
                    self._request.wait(timeout=0.1)
                if not self._running:
                    return
                request, self._pending_request = self._pending_request, None
            with self._slot_lock:
                visual, instruction = self._visual, self._instruction
                frame_index, comparable = self._visual_frame
                state, state_offset_s = self._paired_state(visual, comparable)
            if visual is None or state is None:
                # Keep the request (unless a newer one came) until the inputs exist.
                self.get_logger().info(
                    'chunk requested, waiting for '
                    + ' and '.join(n for n, v in (('a camera frame', visual),
                                                  ('a robot state', state)) if v is None),
                    throttle_duration_sec=2.0)
                self._retry_later(request, 0.01)
                continue
            if self._needs_fresher_frame(visual.stamp_s, frame_index, comparable):
                self._retry_later(request, 0.005)
                continue
            self._note_state_offset(state_offset_s)
            self._serving = True
            try:
                self._plan_and_publish(request, visual, state, instruction)
            except Exception as exc:   # never let the thread die: the executor holds meanwhile
                if not self._running or not self.context.ok():
                    return   # destroyed or shut down under us (Ctrl-C): nothing to report
                self._error('plan_failure', f'planning failed ({type(exc).__name__}: {exc}); '
                                            'no chunk published')
            finally:
                self._serving = False

    @property
    def serving(self) -> bool:
        """True while a chunk request is being planned (including an emulated latency): a
        request arriving meanwhile waits for it, one request at a time."""
        return self._serving

    def _retry_later(self, request: TrajectoryView, pause_s: float) -> None:
        """Keep the request (unless a newer one came meanwhile) and look again after a pause."""
        with self._request:
            if self._pending_request is None:
                self._pending_request = request
        time.sleep(pause_s)

    def _needs_fresher_frame(self, stamp_s: float, frame_index: int, comparable: bool) -> bool:
        """True while the newest frame predates the last executor reset (and the wait for a
        newer one has not timed out): a chunk planned from it would act on the old scene.

        Fresh = received after the reset and, where the frame's clock is this node's, stamped no
        earlier than the reset (a frame delayed in transport can arrive after it)."""
        timeout = self.params['fresh_frame_timeout_s']
        with self._request:
            fresh = frame_index > self._fresh_after_index and (
                not comparable or stamp_s >= self._fresh_after_s)
            if fresh or timeout <= 0.0 or self._fresh_wait_since == float('inf'):
                return False
            now = time.monotonic()
            if self._fresh_wait_since is None:
                self._fresh_wait_since = now
            if now - self._fresh_wait_since < timeout:
                return True
            self._fresh_wait_since = float('inf')   # gave up for this reset: no wait per request
        self._error('stale_frame_after_reset',
                    f'no frame newer than the reset arrived within {timeout:g} s; planning from '
                    f'the newest one (camera stalled, or its clock behind?)')
        return False

    def _plan_and_publish(self, request: TrajectoryView, visual: VisualEmbedding,
                          state: np.ndarray, instruction: str) -> None:
        started_s = self.now_s()   # the node clock: sim time when use_sim_time is set
        prefix = self._aligned_prefix(request, visual.stamp_s)
        seed = None if self.params['noise_seed'] < 0 else \
            deterministic_seed(self.params['noise_seed'], visual.stamp_s)
        try:
            chunk = self.runtime.plan_chunk(visual, instruction, state, seed=seed, prefix=prefix)
        except VlaEdgeError as exc:
            self._error('plan', f'no chunk: {exc}')
            return
        # The packaged runtime refuses such a chunk itself (ModelOutputError); a runtime handed
        # to this node need not be that one, and this is the last step before the robot.
        if not np.all(np.isfinite(chunk.actions)):
            self._error('plan', 'the model produced NaN/inf actions: chunk not published')
            return
        for stage in ('backbone', 'action_expert'):
            self.stage_latency[stage].add(chunk.stage_latency_s[stage])
        if self.params['emulated_latency_s'] > 0.0 and \
                self._wait_until(started_s + self.params['emulated_latency_s']):
            return   # shutting down
        actions = chunk.actions
        if self.positions:   # from where the robot was when the frame was taken
            p = self.params
            actions = velocity_chunk_to_positions(
                actions, state[list(p['position.state_dims'])],
                p['position.top_speed'] / self.rate_hz, p['position.action_dims'],
                p['position.lower'], p['position.upper'])
        # Serialized here (numpy, ~0.02 ms) rather than as 50 rosidl point objects (~0.5 ms with
        # rclpy's conversion): the same JointTrajectory on the wire. The request id is echoed.
        self.chunk_pub.publish(chunk_to_trajectory_cdr(
            actions, chunk.observation_stamp_s, self.rate_hz, self.chunk_names,
            request.frame_id))
        raw_s = visual.encode_s + chunk.stage_latency_s['backbone'] + \
            chunk.stage_latency_s['action_expert']
        self.chunk_records.append((visual.stamp_s, raw_s,
                                   self.now_s()))
        del self.chunk_records[:-10000]
        self._chunks += 1

    def _wait_until(self, deadline_s: float) -> bool:
        """Sleep until the node clock reaches `deadline_s` (polled, so that sim time, which
        moves only when /clock says so, is honoured too; a clock that jumps back, a sim reset,
        ends the wait); True if the node is stopping."""
        started_s = self.now_s()
        while True:
            now_s = self.now_s()
            remaining = deadline_s - now_s
            if remaining <= 0.0 or now_s < started_s:   # done, or the clock jumped back
                return False
            if self._stopping.wait(min(remaining, 0.005)):
                return True

    def _aligned_prefix(self, request: TrajectoryView, obs_stamp_s: float) -> np.ndarray | None:
        """The request's committed prefix at the model's rate (the executor may tick at another),
        columns by name, placed on the chunk (`core/committed_prefix.py`)."""
        if request.n_points == 0:
            return None
        if self.positions:
            self._error('prefix', 'chunk_request prefix not used: committed prefixes are the '
                                  "model's velocity actions; with command_interface position "
                                  'use the blend or offset_fade merge')
            return None
        try:
            prefix = request.actions()
            if self.action_names:   # also checks the width against them
                prefix = columns_by_name(prefix, request.joint_names, self.action_names)
            elif prefix.shape[1] != self.runtime.manifest.action_dim:
                raise ValueError(f'{prefix.shape[1]} values per point, the model has '
                                 f'{self.runtime.manifest.action_dim} actions')
            # NaN/inf or values no action of the model has (core/action_range.py): like any
            # other unusable prefix, plan free. Checked on every row, before any is dropped.
            problem = self.runtime.action_range.problem(prefix)
            if problem is not None:
                raise ValueError(problem)
            prefix, _ = onto_tick_grid(prefix, request.times_s, self.rate_hz)
            return align_prefix(prefix, request.stamp_s, obs_stamp_s,
                                self.rate_hz, self.runtime.manifest.chunk_length - 1)
        except ValueError as exc:
            self._error('prefix', f'chunk_request prefix not used: {exc}')
            return None

    # -- helpers ---------------------------------------------------------------------------------
    def _state_vector(self, msg: JointState) -> np.ndarray:
        return state_vector(msg.name, msg.position, msg.velocity,
                            self.params['state_position_joints'],
                            self.params['state_velocity_joints'])

    def _error(self, kind: str, text: str) -> None:
        """Count it; log it unless this kind was logged in the last 2 s (per kind: one throttle
        for all kinds would hide a second problem behind the first)."""
        self._errors[kind] = self._errors.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._error_logged.get(kind, -1e9) >= ERROR_LOG_PERIOD_S:
            self._error_logged[kind] = now
            self.get_logger().warning(text)

    def publish_diagnostics(self) -> None:
        values: dict[str, object] = {'chunks_published': self._chunks,
                                     'frames_received': self.frames_received,
                                     'frames_encoded': self.frames_encoded,
                                     'frames_skipped_unchanged': self.frames_skipped_unchanged,
                                     'frames_off_clock': self.frames_off_clock,
                                     'emulated_latency_s': self.params['emulated_latency_s']}
        for stage, tracker in self.stage_latency.items():
            if tracker.samples:
                v = np.array(tracker.samples)
                values[f'{stage}_p50_ms'] = f'{np.percentile(v, 50) * 1e3:.2f}'
                values[f'{stage}_p95_ms'] = f'{np.percentile(v, 95) * 1e3:.2f}'
        offsets = np.abs(np.array(self.state_offsets_s)) * 1e3
        if len(offsets):
            values['state_frame_offset_p50_ms'] = f'{np.percentile(offsets, 50):.2f}'
            values['state_frame_offset_max_ms'] = f'{offsets.max():.2f}'
        ages = np.array(self.state_arrival_ages_s) * 1e3
        if len(ages):
            values['state_arrival_age_p50_ms'] = f'{np.percentile(ages, 50):.2f}'
        values['state_history_restarts'] = self._states.restarts
        values.update({f'errors_{k}': v for k, v in dict(self._errors).items()})
        values['threads_alive'] = sum(t.is_alive() for t in self._threads)
        level = DiagnosticStatus.WARN if self._errors else DiagnosticStatus.OK
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status(f'{diagnostic_name(self)}: policy', level,
                             'errors seen' if self._errors else 'running', values)]
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        self._running = False
        if hasattr(self, '_stopping'):   # absent if the constructor refused its parameters
            self._stopping.set()
        for t in getattr(self, '_threads', []):
            t.join(timeout=5.0)
            if t.is_alive():   # a stage still running: it stops, quietly, when it returns
                self.get_logger().warning(f'{t.name} thread still busy after 5 s; destroying '
                                          'the node under it')
        super().destroy_node()


def main(args=None):
    spin_nodes(lambda: [VlaNode()], args)
