"""The fault harness's instruments: taps that inject faults where they arise (the sim camera's
publisher, the chunk executor's output), the robot-side monitor, and the robot-side safety check.

Taps wrap a live node's publisher on the instance (the node's code is unchanged, rclpy is not
mocked); see faults.py for how they are used.
"""
from __future__ import annotations

import bisect
import json
import threading
import time

import cv2
import numpy as np

from vla_edge.nodes.messages import stamp_to_s


class CameraTap:
    """Wraps the sim camera's publisher; `mode` says what to do to the next frames."""

    def __init__(self, camera):
        self.mode: str | None = None
        self.onset_s: float | None = None
        self._last = None
        self._publish = camera.pub.publish
        camera.pub.publish = self.publish

    def start(self, mode: str) -> None:
        self.onset_s, self.mode = None, mode

    def publish(self, msg) -> None:
        mode = self.mode
        if mode is None:
            self._last = msg
            self._publish(msg)
            return
        if self.onset_s is None:
            self.onset_s = stamp_to_s(msg.header.stamp)
        if mode == 'camera_stop':
            return
        rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        if mode == 'frozen':
            msg.data = self._last.data
        elif mode == 'black':
            msg.data = bytes(len(msg.data))
        elif mode == 'saturated':
            msg.data = b'\xff' * len(msg.data)
        elif mode == 'blur':
            msg.data = cv2.GaussianBlur(rgb, (0, 0), 3.0).tobytes()
        elif mode == 'wrong_size':
            msg.data = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA).tobytes()
            msg.height = msg.width = 64
            msg.step = 64 * 3
        elif mode == 'bad_encoding':
            msg.encoding = 'yuv422'
            msg.step = msg.width * 2
        self._publish(msg)


class ExecutorTap:
    """Wraps the executor's command publisher: logs every command (action or hold) and applies
    `transform` (the jump fault) from the first command after the next chunk arrives."""

    def __init__(self, executor):
        self.ex = executor
        self.log: list[tuple[float, np.ndarray, str]] = []
        self.transform = None
        self.onset_s: float | None = None
        self._arm_at_chunk: int | None = None
        self._arm_scheduler = None
        self._publish = executor.command_pub.publish
        executor.command_pub.publish = self.publish

    def start_after_next_chunk(self, transform) -> None:
        self.onset_s = None
        self._arm_scheduler = self.ex.scheduler
        self._arm_at_chunk = self.ex.scheduler.stats.chunks_received + 1
        self.transform = transform

    def _next_chunk_arrived(self) -> bool:
        """A reset (new episode) replaces the scheduler and restarts its chunk count: then any
        chunk of the new one counts (missing this left the jump fault unarmed in ~1 run in 7)."""
        stats = self.ex.scheduler.stats
        if self.ex.scheduler is not self._arm_scheduler:
            return stats.chunks_received >= 1
        return stats.chunks_received >= self._arm_at_chunk

    def publish(self, msg) -> None:
        now = self.ex.now_s()
        kind = 'hold' if self.ex.last_command_was_hold else 'action'
        values = np.array(msg.data, dtype=np.float64)
        if self.transform is not None and self._next_chunk_arrived():
            values = self.transform(values)
            msg.data = values.tolist()
            if self.onset_s is None:
                self.onset_s = now
        self.log.append((now, values, kind))
        del self.log[:-20000]
        self._publish(msg)


def jump_vx(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[0] += -0.9 if out[0] > 0.05 else 0.9
    return out


def jump_x(values: np.ndarray) -> np.ndarray:
    """Position targets: 0.3 (25 top-speed steps, twice the gate's reach from the measured
    position) toward the middle of the table, so the target stays on it."""
    out = values.copy()
    out[0] += -0.3 if out[0] > 0.5 else 0.3
    return out


class Monitor:
    """The robot's view: every `command` received, and the watchdog's events."""

    def __init__(self, context, watchdog_name: str = 'watchdog',
                 state_joints: tuple[str, ...] = ()):
        """`state_joints`: per command dim, the joint whose measured position that dim targets
        ('' for none): with position targets, the robot side also records joint_states."""
        import rclpy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray, String
        from std_srvs.srv import Trigger

        self.node = rclpy.create_node('fault_monitor', context=context)
        self.lock = threading.Lock()
        self.commands: list[tuple[float, np.ndarray]] = []
        self.states: list[tuple[float, np.ndarray]] = []   # per command dim; NaN: none
        self.events: list[dict] = []
        self.state_joints = tuple(state_joints)
        self.node.create_subscription(Float64MultiArray, 'command', self._on_command, 100)
        if any(self.state_joints):
            self.node.create_subscription(JointState, 'joint_states', self._on_state, 100)
        self.node.create_subscription(String, f'{watchdog_name}/events', self._on_event, 1000)
        self.reset_client = self.node.create_client(Trigger, f'{watchdog_name}/reset')
        self._trigger = Trigger

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_command(self, msg) -> None:
        item = (self.now_s(), np.array(msg.data, dtype=np.float64))
        with self.lock:
            self.commands.append(item)

    def _on_state(self, msg) -> None:
        """Kept at the robot's own stamp, not when this node got to it: with a command and a
        state both waiting, rclpy hands over the command first, and a state the gate had
        already judged that command by would look newer than it (a false 'unsafe')."""
        by_name = dict(zip(msg.name, msg.position))
        values = np.array([by_name.get(j, np.nan) if j else np.nan for j in self.state_joints],
                          dtype=np.float64)
        stamp = stamp_to_s(msg.header.stamp)
        item = (stamp if stamp > 0.0 else self.now_s(), values)
        with self.lock:
            bisect.insort(self.states, item, key=lambda s: s[0])
            del self.states[:-100000]   # 33 min at 50 Hz: a whole clean run is judged

    def state_window(self, t0: float, t1: float = np.inf):
        with self.lock:
            return [(t, s) for t, s in self.states if t0 <= t <= t1]

    def _on_event(self, msg) -> None:
        with self.lock:
            self.events.append(json.loads(msg.data))

    def reset_watchdog(self, timeout_s: float = 10.0) -> tuple[bool, str]:
        """Call ~/reset until accepted (it is refused while a fault is present)."""
        end = time.monotonic() + timeout_s
        reason = 'service not available'
        while time.monotonic() < end:
            if self.reset_client.wait_for_service(timeout_sec=0.5):
                future = self.reset_client.call_async(self._trigger.Request())
                t = time.monotonic()
                while not future.done() and time.monotonic() - t < 2.0:
                    time.sleep(0.01)
                if future.done():
                    reply = future.result()
                    if reply.success:
                        return True, reply.message
                    reason = reply.message
            time.sleep(0.1)
        return False, reason

    def window(self, t0: float, t1: float = np.inf):
        with self.lock:
            return [(t, c) for t, c in self.commands if t0 <= t <= t1]

    def events_after(self, t0: float, kinds=('latch', 'clamp', 'veto')) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e['stamp_s'] >= t0 and e['event'] in kinds]


def unsafe_commands(commands, gate_cfg, states=None,
                    position_dims=()) -> list[tuple[float, str]]:
    """Robot-side check of consecutive commands against the gate's limits: non-finite, out of
    bounds, or a velocity step beyond max_acceleration / rate that is not a step toward rest
    (a stop may be abrupt). With `states` ((time, measured value per command dim) as the robot
    published them), on `position_dims`: a target farther than the gate's max_state_step from
    every position measured in the 0.1 s before it, and a step between two targets beyond the gate's
    max_velocity / rate on a dim it does not hold where the robot was measured (a hold may jump
    back to the robot, dim by dim, as the gate lets it).
    Vectorised: a clean run has tens of thousands of commands."""
    lo, hi = np.asarray(gate_cfg.value_min), np.asarray(gate_cfg.value_max)
    limit = np.asarray(gate_cfg.max_acceleration) / gate_cfg.control_rate_hz
    bad = [(t, f'malformed {c.tolist()}') for t, c in commands if c.shape != lo.shape]
    rows = [(t, c) for t, c in commands if c.shape == lo.shape]
    if not rows:
        return bad
    times = np.array([t for t, _ in rows])
    values = np.vstack([c for _, c in rows])
    finite = np.all(np.isfinite(values), axis=1)
    bad += [(times[i], f'non-finite {values[i].tolist()}') for i in np.flatnonzero(~finite)]
    times, values = times[finite], values[finite]
    out = np.any(values < lo - 1e-9, axis=1) | np.any(values > hi + 1e-9, axis=1)
    bad += [(times[i], f'out of bounds {values[i].round(4).tolist()}')
            for i in np.flatnonzero(out)]
    for d in gate_cfg.velocity_dims:
        if limit[d] <= 0 or len(values) < 2:
            continue
        prev, cur = values[:-1, d], values[1:, d]
        toward_rest = (np.minimum(0.0, prev) - 1e-12 <= cur) & \
            (cur <= np.maximum(0.0, prev) + 1e-12)
        jump = (np.abs(cur - prev) > limit[d] * (1 + 1e-6) + 1e-9) & ~toward_rest
        bad += [(times[i + 1], f'dim {d} stepped {prev[i]:.3f} -> {cur[i]:.3f}')
                for i in np.flatnonzero(jump)]
    if states and position_dims:
        bad += _position_faults(times, values, states, list(position_dims), gate_cfg)
    return sorted(bad, key=lambda item: item[0])


def _position_faults(times, values, states, dims, gate_cfg, lookback_s: float = 0.1):
    """Targets beyond the gate's reach of the robot, and steps faster than its speed limit that
    do not hold the robot (see `unsafe_commands`). A command with no state in the lookback_s
    before it is not judged."""
    reach = np.asarray(gate_cfg.max_state_step, dtype=np.float64)[dims]
    speed = np.asarray(gate_cfg.max_velocity, dtype=np.float64)[dims] / gate_cfg.control_rate_hz
    state_times = np.array([t for t, _ in states])
    measured = np.vstack([s for _, s in states])[:, dims]
    bad = []
    for i, t in enumerate(times):
        lo, hi = np.searchsorted(state_times, [t - lookback_s, t], side='right')
        if lo >= hi:
            continue   # nothing measured just before: not judged
        # against any position of the lookback: the gate judged with the one it had then
        target, robot = values[i, dims], measured[hi - 1]
        gap = np.abs(target[None, :] - measured[lo:hi])
        far = np.any((reach > 0) & (gap > reach * (1 + 1e-6) + 1e-9), axis=1)
        if np.all(far):
            bad.append((t, f'target {target.round(4).tolist()} beyond the gate\'s reach of the '
                           f'robot at {robot.round(4).tolist()}'))
        if i == 0:
            continue
        step = np.abs(target - values[i - 1, dims])
        fast = (speed > 0) & (step > speed * (1 + 1e-6) + 1e-9)
        at_robot = np.any(measured[lo:hi] == target[None, :], axis=0)   # per dim, as the gate
        if np.any(fast & ~at_robot):
            bad.append((t, f'target stepped {values[i - 1, dims].round(4).tolist()} -> '
                           f'{target.round(4).tolist()}, faster than the gate\'s speed limit'))
    return bad


def first_held(commands, dims, t0: float, states=()) -> float | None:
    """When the first command at or after t0 came that holds the robot on `dims` (`holds`).
    `commands` (time, values) should start a little before t0, for the one before."""
    for i, (t, _) in enumerate(commands):
        if t >= t0 and holds(commands, i, dims, states):
            return t
    return None


def holds(commands, i: int, dims, states=()) -> bool:
    """Whether command i holds the robot on `dims`: a position target equal to a position the
    robot reported in the 0.1 s before it (the watchdog's and the executor's holds are where the
    robot was measured), or one that repeats the command before or after it exactly (a latched
    hold). `states` as `Monitor.states`."""
    dims = list(dims)
    t, c = commands[i]
    if any(0 <= j < len(commands) and np.array_equal(c[dims], commands[j][1][dims])
           for j in (i - 1, i + 1)):
        return True
    return any(t - 0.1 <= ts <= t and np.array_equal(c[dims], s[dims]) for ts, s in states)


def is_stop(c: np.ndarray, ref: np.ndarray, dims) -> bool:
    """Every velocity dim at zero or moving toward it from `ref`, and not `ref` itself."""
    toward = all(min(0.0, ref[i]) <= c[i] <= max(0.0, ref[i]) for i in dims)
    return toward and (not np.array_equal(c[list(dims)], ref[list(dims)]) or
                       not np.any(ref[list(dims)]))


def wait_until(condition, timeout_s: float, poll_s: float = 0.01) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())
