"""The veto latch, and the safe command sent while it holds.

A veto must not flicker: a fault that comes and goes (a policy that alternates good and broken
commands, a camera that drops out every other second) would otherwise let the robot lurch between
moving and holding. So a fault latches; it clears only by an explicit reset once the faults are
gone, or (if configured) after the system has been healthy continuously for auto_clear_after_s.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_edge.core.watchdog.config import HOLD_MODES


@dataclass(frozen=True)
class ResetResult:
    """Whether a reset request was accepted, and why (the ~/reset service's message)."""

    accepted: bool
    reason: str


MAX_REASONS = 32


def _source(reason: str) -> str:
    """'frame.stale: newest frame is 0.61 s old' comes from 'frame.stale'."""
    return reason.split(':', 1)[0]


class VetoLatch:
    """`update` on every evaluation with the faults present now; `latched` says whether to hold.

    Reasons are 'source: text' (CheckResult.describe()); the latch keeps the first per source,
    since a persisting fault re-reports itself with new numbers on every evaluation.
    """

    def __init__(self, auto_clear_after_s: float = 0.0):
        if auto_clear_after_s < 0:
            raise ValueError(f'auto_clear_after_s = {auto_clear_after_s} must be >= 0 '
                             '(0: manual reset only)')
        self.auto_clear_after_s = auto_clear_after_s
        self.latched = False
        self.reasons: tuple[str, ...] = ()
        self.tripped_at_s: float | None = None
        self.trips = 0
        self._healthy_since_s: float | None = None

    def update(self, now_s: float, faults: Sequence[str]) -> bool:
        """Latch on any fault (collecting reasons until cleared); count healthy time otherwise.
        Returns `latched`."""
        if faults:
            if not self.latched:
                self.latched, self.tripped_at_s, self.reasons = True, now_s, ()
                self.trips += 1
            seen = {_source(r) for r in self.reasons}
            for reason in faults:   # the first reason per source: what tripped it
                if _source(reason) not in seen and len(self.reasons) < MAX_REASONS:
                    self.reasons += (reason,)
                    seen.add(_source(reason))
            self._healthy_since_s = None
            return True
        if not self.latched:
            return False
        if self._healthy_since_s is None:
            self._healthy_since_s = now_s
        if self.auto_clear_after_s > 0 and \
                now_s - self._healthy_since_s >= self.auto_clear_after_s:
            self._clear()
        return self.latched

    def healthy_for_s(self, now_s: float) -> float:
        return 0.0 if self._healthy_since_s is None else now_s - self._healthy_since_s

    def reset(self, now_s: float, faults_present: Sequence[str] = ()) -> ResetResult:
        """Clear the latch, unless a fault is still present: a reset must not wave a live fault
        through."""
        if faults_present:
            self.update(now_s, faults_present)
            return ResetResult(False, 'reset refused, faults still present: '
                               + '; '.join(faults_present))
        if not self.latched:
            return ResetResult(True, 'not latched')
        was = '; '.join(self.reasons)
        self._clear()
        return ResetResult(True, f'cleared (was: {was})')

    def _clear(self) -> None:
        self.latched = False
        self.reasons = ()
        self.tripped_at_s = None
        self._healthy_since_s = None


def safe_command(last_safe: np.ndarray | None, hold_mode: str, velocity_dims: Sequence[int],
                 fallback: np.ndarray | None = None) -> np.ndarray | None:
    """The command to send while holding, as the chunk executor holds: the last safe command
    (positions stay where they were), with the velocity dims zeroed in 'zero_velocity' mode; in
    'state' mode the measured state (`fallback`) where it is known, velocity dims zeroed (for
    position targets: where the robot is, not where it was last sent).

    Before any command was safe, `fallback` (e.g. the measured state in command space; NaN where
    unknown) with its velocity dims zeroed stands in. None means no safe command is known (a
    position dim with no known value): send nothing and let the robot's command timeout stop it,
    rather than command an arbitrary position.
    """
    if hold_mode not in HOLD_MODES:
        raise ValueError(f'hold_mode = {hold_mode!r} must be one of {list(HOLD_MODES)}')
    base = last_safe if last_safe is not None else fallback
    if base is None:
        return None
    held = np.array(base, dtype=np.float64).reshape(-1)
    if hold_mode == 'state' and fallback is not None:
        measured = np.asarray(fallback, dtype=np.float64).reshape(-1)
        known = np.isfinite(measured) if measured.shape == held.shape else np.zeros(0, bool)
        held[known] = measured[known]
    if hold_mode != 'last' or last_safe is None:
        held[[i for i in velocity_dims if 0 <= i < len(held)]] = 0.0
    return held if np.all(np.isfinite(held)) else None
