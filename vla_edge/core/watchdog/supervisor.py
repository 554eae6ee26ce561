"""The whole watchdog as one object with a virtual clock: what the ROS node calls.

Inputs arrive through `on_frame`, `on_chunk` and `on_command`; `on_tick` runs from a timer so that
silence (a dead camera, a hung policy, a dead executor) is noticed. Every fault (ERROR or STALE,
or a vetoed command) trips the latch; while it holds, each command is answered with the safe
command. Until every monitored input has arrived and none has faulted for `latch.arm_after_s`, the
watchdog is not armed: it holds, but does not latch, since "not started yet" (or a stall while the
pipeline warms up) is not a fault that should need a manual reset.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_edge.core.watchdog.command_checks import CommandGate, GateDecision
from vla_edge.core.watchdog.config import WatchdogConfig
from vla_edge.core.watchdog.frame_checker import FrameChecker
from vla_edge.core.watchdog.latch import ResetResult, VetoLatch, safe_command
from vla_edge.core.watchdog.liveness import Heartbeat
from vla_edge.core.watchdog.motion_check import NAME as MOTION_NAME
from vla_edge.core.watchdog.motion_check import MotionCheck
from vla_edge.core.watchdog.results import CheckResult, Level, not_applicable, ok

# A measured state older than this many control periods is not held to (hold_mode state).
STATE_MAX_AGE_PERIODS = 5


@dataclass(frozen=True)
class WatchdogDecision:
    """What to send now (None: nothing) and why.

    `holding`: the command is the safe hold, not the request. `reasons`: the faults behind the
    hold, or the clamps applied to a command that passed.
    """

    command: np.ndarray | None
    holding: bool
    latched: bool
    reasons: tuple[str, ...]
    gate: GateDecision | None = None

    @property
    def clamped(self) -> bool:
        return self.gate is not None and self.gate.clamped and not self.holding


class Watchdog:
    """Frame checks, motion consistency, command gate, heartbeats and the latch, wired up.

    Not thread-safe: a node calling it from several callback groups holds one lock around
    every call. All times are on one clock (the node's, so sim time is honoured).
    """

    def __init__(self, config: WatchdogConfig | None = None):
        self.config = cfg = config or WatchdogConfig()
        self.frames = FrameChecker(
            cfg.frame, flow_max_side=cfg.motion.flow_max_side,
            stall_gap_s=cfg.frame.stall_gap_periods / cfg.command.control_rate_hz,
            call_period_s=1.0 / cfg.command.control_rate_hz)
        self.motion = MotionCheck(cfg.motion)
        self.gate = CommandGate(cfg.command)
        self.command_beat = Heartbeat('command_raw', cfg.liveness.command_timeout_s)
        self.chunk_beat = Heartbeat('action_chunk', cfg.liveness.chunk_timeout_s)
        self.latch = VetoLatch(cfg.latch.auto_clear_after_s)
        self.armed = False
        self._healthy_since: float | None = None   # before arming: fault-free since
        self.last_safe: np.ndarray | None = None
        self._held: np.ndarray | None = None   # hold_mode state: read when the hold started
        self.hold_reanchors = 0   # held targets moved to a robot found beyond reach of them
        self._moved_to: tuple[float, np.ndarray] | None = None   # a first reading beyond reach
        self._measured_s: float | None = None  # when _measured was taken
        self.last_gate: GateDecision | None = None
        self._measured: np.ndarray | None = None
        self._motion_result = not_applicable(MOTION_NAME, 'no frames yet')
        self._speed_range: tuple[float, float] | None = None   # sent since the last frame
        self._speed_now = 0.0

    # -- inputs --------------------------------------------------------------------------------
    def on_frame(self, frame: np.ndarray, stamp_s: float, now_s: float,
                 encoding: str | None = 'rgb8') -> tuple[CheckResult, ...]:
        """Check one camera frame (RGB uint8) and the motion it shows; returns the results."""
        self.frames.note_awake(now_s)
        report = self.frames.check(frame, stamp_s, now_s, encoding)
        if report.prepared is not None:
            lo, hi = self._speed_range or (self._speed_now, self._speed_now)
            self._motion_result = self.motion.update(report.prepared.flow_grey, stamp_s, lo, hi)
            self._speed_range = None
        self._evaluate(now_s)
        return report.results + (self._motion_result,)

    def on_chunk(self, now_s: float) -> None:
        self.frames.note_awake(now_s)
        self.chunk_beat.beat(now_s)

    def on_command(self, command, now_s: float, measured_state: np.ndarray | None = None,
                   chunk_switch: bool = False) -> WatchdogDecision:
        """Gate one command; returns what to send instead of it. `measured_state` is in command
        space (NaN where not measured)."""
        self.frames.note_awake(now_s)
        self.command_beat.beat(now_s)
        if measured_state is not None:
            self._keep_state(measured_state, now_s, new_reading=False)
        gate = self.gate.check(command, now_s, measured_state, chunk_switch, record=False)
        self.last_gate = gate
        faults = self._evaluate(now_s, gate.reasons if gate.veto else ())
        if faults or self.latch.latched or not self.armed:
            out = self.hold_command(now_s)
            reasons = self.latch.reasons if self.latch.latched else (
                faults or self._not_armed_reasons(now_s))
            decision = WatchdogDecision(out, True, self.latch.latched, tuple(reasons), gate)
        else:
            out = gate.command
            self.last_safe = out
            self._held = None
            decision = WatchdogDecision(out, False, False, gate.reasons, gate)
        if out is not None:
            self._note_sent(out, now_s)
        return decision

    def on_tick(self, now_s: float) -> WatchdogDecision:
        """Notice silence. Returns the safe command to publish when holding and the command
        stream itself has stopped (otherwise on_command answers each command)."""
        self.frames.note_awake(now_s)
        faults = self._evaluate(now_s)
        holding = self.latch.latched or not self.armed
        out = None
        if holding and self.command_beat.check(now_s).fault:
            out = self.hold_command(now_s)
            if out is not None:
                self._note_sent(out, now_s)
        reasons = self.latch.reasons if self.latch.latched else (
            () if self.armed else self._not_armed_reasons(now_s, faults))
        return WatchdogDecision(out, holding, self.latch.latched, tuple(reasons))

    def reset(self, now_s: float) -> ResetResult:
        """Operator reset: accepted only when no fault is present now."""
        faults = list(self._faults(now_s))
        if self.last_gate is not None and self.last_gate.veto:
            faults += [f'last command vetoed: {r}' for r in self.last_gate.reasons]
        result = self.latch.reset(now_s, faults)
        if result.accepted:
            self._held = None   # the next hold starts where the robot is then (a sim reset
        return result           # may have teleported it while latched)

    # -- state ---------------------------------------------------------------------------------
    def results(self, now_s: float) -> tuple[CheckResult, ...]:
        """Every check's latest verdict plus the latch, for /diagnostics."""
        frame = [r for r in self.frames.last_report.results if r.name != 'frame.stale']
        out = [self.frames.check_stale(now_s), *frame, self._motion_result,
               self.command_beat.check(now_s), self.chunk_beat.check(now_s)]
        if self.last_gate is not None:
            out += list(self.last_gate.results)
        if self.latch.latched:
            out.append(CheckResult('watchdog.latch', Level.ERROR, 'latched: '
                                   + '; '.join(self.latch.reasons),
                                   {'trips': self.latch.trips,
                                    'healthy_for_s': round(self.latch.healthy_for_s(now_s), 3)}))
        elif not self.armed:
            waiting = self._waiting_for(now_s)
            text = ('waiting for ' + ', '.join(waiting) if waiting else
                    'not armed: ' + '; '.join(self._not_armed_reasons(now_s, self._faults(now_s))))
            out.append(CheckResult('watchdog.latch', Level.WARN, f'holding: {text}'))
        else:
            out.append(ok('watchdog.latch', trips=self.latch.trips))
        return tuple(out)

    # -- internals -----------------------------------------------------------------------------
    def _faults(self, now_s: float) -> tuple[str, ...]:
        frame = [r for r in self.frames.last_report.results if r.name != 'frame.stale']
        checks = [self.frames.check_stale(now_s), *frame, self._motion_result,
                  self.command_beat.check(now_s), self.chunk_beat.check(now_s)]
        return tuple(r.describe() for r in checks if r.fault)

    def _waiting_for(self, now_s: float) -> list[str]:
        missing = []
        if 'stale' in self.config.frame.checks and self.frames.last_stamp_s is None:
            missing.append('camera frame')
        for beat in (self.chunk_beat, self.command_beat):
            if beat.timeout_s > 0 and beat.last_beat_s is None:
                missing.append(beat.name)
        return missing

    def _evaluate(self, now_s: float, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Current faults; they trip the latch once armed (before that, inputs are missing or
        have not yet been fault-free for `arm_after_s`)."""
        faults = self._faults(now_s) + tuple(extra)
        if not self.armed:
            self._arm_if_settled(now_s, faults)
        if self.armed:
            self.latch.update(now_s, faults)
        return faults

    def _arm_if_settled(self, now_s: float, faults: tuple[str, ...]) -> None:
        settle_s = self.config.latch.arm_after_s
        if self._waiting_for(now_s):
            self._healthy_since = None
        elif settle_s <= 0.0:
            self.armed = True
        elif faults:
            self._healthy_since = None
        else:
            if self._healthy_since is None:
                self._healthy_since = now_s
            self.armed = now_s - self._healthy_since >= settle_s

    def _not_armed_reasons(self, now_s: float, faults: tuple[str, ...] = ()) -> tuple[str, ...]:
        waiting = self._waiting_for(now_s)
        if waiting:
            return tuple(f'waiting for {w}' for w in waiting)
        return faults or (f'arming after {self.config.latch.arm_after_s:g} s without faults',)

    def note_state(self, measured_state, now_s: float) -> None:
        """A new reading of the robot's state in command space (NaN where not measured), also
        between commands: a hold that starts when command_raw falls silent reads it."""
        self.frames.note_awake(now_s)
        self._keep_state(measured_state, now_s, new_reading=True)

    def _keep_state(self, measured_state, now_s: float, new_reading: bool) -> None:
        """`new_reading`: a state that arrived now (note_state); a state hold judges it
        (`_reanchor_held`). The one passed with each command is the caller's latest, most often
        the same reading again: it is taken (and its time) only when its value differs, so that
        a state feed that stopped still ages while commands flow."""
        m = np.asarray(measured_state, dtype=np.float64).reshape(-1)
        if new_reading:
            if self._held is not None and self.config.latch.hold_mode == 'state':
                self._reanchor_held(m, now_s)
        elif self._measured is not None and np.array_equal(m, self._measured, equal_nan=True):
            return
        self._measured = m
        self._measured_s = now_s

    def hold_command(self, now_s: float | None = None,
                     hold_mode: str | None = None) -> np.ndarray | None:
        """The hold command in `hold_mode` (default: latch.hold_mode). In the latch's 'state'
        mode the measured state is read once, when the hold starts, and repeated: a target that
        followed the measurement would let an arm creep. But a held target that stays beyond the
        gate's own reach (command.max_state_step) of where the robot now is moves there
        (`_reanchor_held`): a sim reset that teleported the robot during a hold, or an arm pushed
        while its drives were off, would otherwise be pulled back across the workspace at full
        speed.
        A state older than STATE_MAX_AGE_PERIODS control periods (at `now_s`) is not used. An
        explicit `hold_mode` (the node's final command) is computed afresh and latches
        nothing."""
        cfg = self.config
        latching = hold_mode is None and cfg.latch.hold_mode == 'state'
        if latching and self._held is not None:
            return self._held.copy()
        fallback = self._measured
        stale = now_s is not None and self._measured_s is not None and \
            now_s - self._measured_s > STATE_MAX_AGE_PERIODS / cfg.command.control_rate_hz
        if fallback is None or stale:
            fallback = np.full(cfg.command.command_dim, np.nan)
        held = safe_command(self.last_safe, hold_mode or cfg.latch.hold_mode,
                            cfg.command.velocity_dims, fallback)
        if latching and held is not None:
            self._held, self._moved_to = held.copy(), None
        return held

    def _reanchor_held(self, m: np.ndarray, now_s: float) -> None:
        """Hold where the robot is measured once two successive readings agree that it was
        moved: both in bounds, both farther than command.max_state_step from the held target on
        some dim with a reach (> 0), within that reach of each other there, and no more than
        STATE_MAX_AGE_PERIODS apart. Every measured position dim then moves, as a hold that
        starts reads them (dims within reach are not pulled back either). One wrong reading, or
        one out of bounds, moves nothing. Two agreeing readings are followed even if wrong: a
        driver that restarted at another zero holds where it now reports, so that is where it
        must be held. Creep within the reach is held off; a robot that sags beyond it is
        followed there."""
        cfg = self.config.command
        reach = np.asarray(cfg.max_state_step, dtype=np.float64)
        before, self._moved_to = self._moved_to, None
        if m.shape != self._held.shape or reach.shape != m.shape:
            return
        position = np.isfinite(m)
        position[[i for i in cfg.velocity_dims if 0 <= i < len(m)]] = False
        judged = position & (reach > 0)
        with np.errstate(invalid='ignore'):
            far = judged & (np.abs(self._held - m) > reach * (1 + 1e-9))
            inside = np.all((m[position] >= np.asarray(cfg.value_min)[position]) &
                            (m[position] <= np.asarray(cfg.value_max)[position]))
        if not np.any(far) or not inside:
            return
        with np.errstate(invalid='ignore'):
            agree = before is not None and \
                now_s - before[0] <= STATE_MAX_AGE_PERIODS / cfg.control_rate_hz and \
                bool(np.all(~judged | (np.abs(before[1] - m) <= reach)))
        if not agree:
            self._moved_to = (now_s, m.copy())   # the first reading of a move
            return
        self._held[position] = m[position]
        self.hold_reanchors += 1

    def _note_sent(self, command: np.ndarray, now_s: float) -> None:
        previous = self.gate.last_sent
        self.gate.record_sent(command, now_s)
        self._speed_now = self._speed(command, previous)
        lo, hi = self._speed_range or (self._speed_now, self._speed_now)
        self._speed_range = (min(lo, self._speed_now), max(hi, self._speed_now))

    def _speed(self, command: np.ndarray, previous: np.ndarray | None) -> float:
        """Commanded speed: velocity dims' values, position dims' rate of change."""
        cfg = self.config
        dims = list(cfg.motion.speed_dims)
        velocity = set(cfg.command.velocity_dims)
        parts = []
        for d in dims:
            if d in velocity:
                parts.append(command[d])
            elif previous is not None:
                parts.append((command[d] - previous[d]) * cfg.command.control_rate_hz)
        return float(np.linalg.norm(parts)) if parts else 0.0
