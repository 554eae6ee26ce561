"""The command gate: every command on its way to the robot passes `CommandGate.check`.

As Autoware's vehicle_cmd_gate and ros2_control's joint limits do, it bounds the command and its
rate of change. Each limit is `clamp` (a small excess is clamped: the robot gets the nearest
admissible command and the result is a WARN), `veto` (no command passes: ERROR) or `off`.
Non-finite values and a wrong length are always vetoed: there is no sensible nearest command.

Derivatives are finite differences of the commands actually *sent* (`record_sent`), taken at the
configured control rate rather than from arrival times, whose jitter on a loaded machine would
inflate them. Clamping intersects the admissible intervals in priority order (bounds, velocity,
acceleration, jerk, state step, switch jump); a lower-priority limit that cannot be met together
with the ones before it gives way to them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_edge.core.watchdog.config import CommandGateConfig
from vla_edge.core.watchdog.results import CheckResult, Level, ok

_INF = np.inf


@dataclass(frozen=True)
class GateDecision:
    """`command` is what may be sent (None when vetoed); `reasons` say why it differs from the
    request (vetoes and clamps)."""

    command: np.ndarray | None
    results: tuple[CheckResult, ...]
    veto: bool
    reasons: tuple[str, ...]

    @property
    def clamped(self) -> bool:
        return not self.veto and any(r.level == Level.WARN for r in self.results)


@dataclass
class _Limit:
    """One limit as an interval per dim on the new command value (NaN bounds: no constraint)."""

    name: str
    mode: str
    measured: np.ndarray     # the quantity the limit is on (velocity, jump, ...) per dim
    limit: np.ndarray        # per dim; <= 0: no limit on that dim
    lo: np.ndarray
    hi: np.ndarray


class CommandGate:
    """Checks and limits commands at the control rate; remembers the last three sent."""

    def __init__(self, config: CommandGateConfig | None = None):
        self.config = config or CommandGateConfig()
        n = self.config.command_dim
        self._is_velocity = np.zeros(n, dtype=bool)
        self._is_velocity[list(self.config.velocity_dims)] = True
        self.reset()

    def reset(self) -> None:
        """Forget the sent history: velocity dims restart from rest, position dims unknown."""
        n = self.config.command_dim
        self._history = np.full((3, n), np.nan)   # row 0: last sent, row 1: before, ...
        self._history[:, self._is_velocity] = 0.0
        self._last_sent_s: float | None = None
        self.last_sent: np.ndarray | None = None

    def record_sent(self, command: np.ndarray, now_s: float) -> None:
        """What actually went to the robot (the gate's output, or a safe hold instead)."""
        command = np.asarray(command, dtype=np.float64).reshape(-1)
        if command.shape != (self.config.command_dim,):
            raise ValueError(f'sent command has {command.size} values, expected '
                             f'{self.config.command_dim}')
        self._rest_after_gap(now_s)
        self._history = np.roll(self._history, 1, axis=0)
        self._history[0] = command
        self._last_sent_s = now_s
        self.last_sent = command.copy()

    def _rest_after_gap(self, now_s: float) -> None:
        """After a long pause the old differences mean nothing: assume the robot came to rest at
        the last sent position, velocity dims stopped (controllers time out a stale command)."""
        if self._last_sent_s is None or now_s - self._last_sent_s <= self.config.history_timeout_s:
            return
        self._history[1:] = self._history[0]
        self._history[:, self._is_velocity] = 0.0

    def check(self, command, now_s: float, measured_state: np.ndarray | None = None,
              chunk_switch: bool = False, record: bool = True) -> GateDecision:
        """Judge one command. `measured_state` is the robot's state mapped to command space
        (NaN: not measured); `chunk_switch` marks the first command of a new chunk. With
        `record`, a command that passes is remembered as sent; pass False when the caller may
        send something else, and call `record_sent` with what it sent.

        Raises ValueError for a measured_state of the wrong length (a caller bug, not a fault
        of the robot's)."""
        cfg = self.config
        try:
            u = np.asarray(command, dtype=np.float64)
        except (TypeError, ValueError):
            return _veto(CheckResult('command.finite', Level.ERROR, 'command is not numeric'))
        if u.ndim != 1 or u.size != cfg.command_dim:
            return _veto(CheckResult('command.length', Level.ERROR, f'command has shape '
                                     f'{u.shape}, expected ({cfg.command_dim},)',
                                     {'length': int(u.size), 'expected': cfg.command_dim}))
        bad = np.flatnonzero(~np.isfinite(u))
        if bad.size:
            return _veto(CheckResult('command.finite', Level.ERROR, f'non-finite values at dims '
                                     f'{bad.tolist()}: {u[bad].tolist()}'))
        self._rest_after_gap(now_s)
        self._restart_at_robot(u, measured_state)
        limits = self._limits(u, measured_state, chunk_switch)
        results = [ok('command.finite'), ok('command.length')]
        veto = False
        for lim in limits:
            result, vetoes = self._judge(lim, u)
            results.append(result)
            veto |= vetoes
        reasons = tuple(r.describe() for r in results if r.level != Level.OK)
        if veto:
            return GateDecision(None, tuple(results), True, reasons)
        out = self._clamp(u, limits)
        if record:
            self.record_sent(out, now_s)
        return GateDecision(out, tuple(results), False, reasons)

    def _restart_at_robot(self, u: np.ndarray, state: np.ndarray | None) -> None:
        """Position dims: restart the sent history at the measured position when the command
        targets exactly where the robot is (a hold: it is never rate-limited away from the
        robot, and the next targets are limited from there). Else, after a sim reset teleported
        the robot (or someone moved it), the executor's hold where the robot now is would be
        clamped back toward the old targets, and the robot pulled there. Nothing else moves the
        history: a single wrong state sample must not carry the limits with it (a target is
        then limited from what was sent, and `state_step` gives way to that)."""
        if state is None:
            return
        m = np.asarray(state, dtype=np.float64).reshape(-1)
        if m.shape != u.shape:
            return   # _limits says what is wrong
        with np.errstate(invalid='ignore'):
            at_robot = np.abs(u - m) <= 1e-9 * (1.0 + np.abs(m))
        dims = ~self._is_velocity & np.isfinite(m) & at_robot
        self._history[:, dims] = m[dims]

    def _limits(self, u: np.ndarray, state: np.ndarray | None, switch: bool) -> list[_Limit]:
        cfg = self.config
        f = cfg.control_rate_hz
        h0, h1, h2 = self._history
        vel = self._is_velocity
        # Centre c and scale s of each derivative order: derivative = (u - c) * s.
        centres = [np.zeros_like(u), h0, 2 * h0 - h1, 3 * h0 - 3 * h1 + h2]
        order = {'velocity': 1, 'acceleration': 2, 'jerk': 3}
        limits = [self._interval('bounds', cfg.bounds_mode,
                                 (np.asarray(cfg.value_min) + np.asarray(cfg.value_max)) / 2,
                                 1.0, u, (np.asarray(cfg.value_max) - cfg.value_min) / 2,
                                 bounds=True)]
        for name, limit in (('velocity', cfg.max_velocity), ('acceleration', cfg.max_acceleration),
                            ('jerk', cfg.max_jerk)):
            n = np.where(vel, order[name] - 1, order[name])
            centre = np.choose(n, centres)
            limits.append(self._interval(name, getattr(cfg, f'{name}_mode'), centre,
                                         float(f) ** n, u, np.asarray(limit)))
        measured = (np.full_like(u, np.nan) if state is None
                    else np.asarray(state, dtype=np.float64).reshape(-1))
        if measured.shape != u.shape:
            raise ValueError(f'measured_state has {measured.size} values, expected {u.size}')
        limits.append(self._interval('state_step', cfg.state_step_mode, measured, 1.0, u,
                                     np.asarray(cfg.max_state_step)))
        jump_limit = np.asarray(cfg.max_switch_jump) if switch else np.zeros_like(u)
        limits.append(self._interval('switch_jump', cfg.switch_jump_mode, h0, 1.0, u, jump_limit))
        return limits

    @staticmethod
    def _interval(name: str, mode: str, centre: np.ndarray, scale, u: np.ndarray,
                  limit: np.ndarray, bounds: bool = False) -> _Limit:
        """|u - centre| * scale <= limit, as an interval on u. For bounds, `limit` is the
        half-range (0 is a legal fixed value there, not 'no limit')."""
        active = np.isfinite(centre) & ((limit > 0) | bounds)
        half = np.where(active, limit / scale, np.nan)
        measured = np.where(active, (u - centre) * scale, np.nan)
        return _Limit(name, mode, measured, np.where(active, limit, 0.0),
                      centre - half, centre + half)

    def _judge(self, lim: _Limit, u: np.ndarray) -> tuple[CheckResult, bool]:
        name = f'command.{lim.name}'
        if lim.mode == 'off':
            return ok(name, 'off'), False
        with np.errstate(invalid='ignore'):
            excess = np.abs(lim.measured) - lim.limit * (1 + 1e-9) - 1e-12
        excess = np.where(np.isfinite(excess), excess, -_INF)
        if not np.any(excess > 0):
            return ok(name), False
        dim = int(np.argmax(excess))
        value, limit = float(lim.measured[dim]), float(lim.limit[dim])
        values = {'dim': dim, 'value': round(value, 6), 'limit': limit}
        if lim.name == 'bounds':
            what = (f'value {u[dim]:.4g} outside [{lim.lo[dim]:.4g}, {lim.hi[dim]:.4g}] '
                    f'at dim {dim}')
            ratio = abs(value) / limit if limit > 0 else _INF
            if lim.mode == 'clamp' and ratio > self.config.bounds_veto_ratio:
                return CheckResult(name, Level.ERROR, f'{what}: {ratio:.3g} half-ranges from '
                                   f'the centre (veto above {self.config.bounds_veto_ratio:g})',
                                   values), True
        else:
            what = f'{lim.name} {abs(value):.4g} > {limit:.4g} at dim {dim}'
        if lim.mode == 'veto':
            return CheckResult(name, Level.ERROR, f'{what}: veto', values), True
        return CheckResult(name, Level.WARN, f'{what}: clamped', values), False

    @staticmethod
    def _clamp(u: np.ndarray, limits: list[_Limit]) -> np.ndarray:
        lo = np.full_like(u, -_INF)
        hi = np.full_like(u, _INF)
        for lim in limits:
            if lim.mode == 'off':
                continue
            new_lo = np.where(np.isnan(lim.lo), lo, np.maximum(lo, lim.lo))
            new_hi = np.where(np.isnan(lim.hi), hi, np.minimum(hi, lim.hi))
            feasible = new_lo <= new_hi
            lo = np.where(feasible, new_lo, lo)
            hi = np.where(feasible, new_hi, hi)
        return np.clip(u, lo, hi)


def _veto(result: CheckResult) -> GateDecision:
    return GateDecision(None, (result,), True, (result.describe(),))
