"""Heartbeats: an input that stops arriving is a fault, not a silence to wait out.

An inference hang shows up as no new action chunk within the expected time; a dead executor as no
command_raw; a dead camera as no frame (that one is the frame stale check). "Never arrived" is
stale too, so a watchdog that starts before its inputs does not report them healthy.
"""
from __future__ import annotations

from vla_edge.core.watchdog.results import CheckResult, Level, ok


class Heartbeat:
    """`beat` on every arrival; `check` from a timer. A timeout of 0 disables the check."""

    def __init__(self, name: str, timeout_s: float):
        if timeout_s < 0:
            raise ValueError(f'heartbeat {name!r}: timeout_s = {timeout_s} must be >= 0')
        self.name = name
        self.timeout_s = timeout_s
        self.last_beat_s: float | None = None
        self.beats = 0

    @property
    def result_name(self) -> str:
        return f'liveness.{self.name}'

    def beat(self, now_s: float) -> None:
        if self.last_beat_s is None or now_s > self.last_beat_s:
            self.last_beat_s = now_s
        else:
            self._rebase_if_clock_went_back(now_s)
        self.beats += 1

    def _rebase_if_clock_went_back(self, now_s: float) -> None:
        """A last beat more than a timeout in the future means the clock went back (a looped
        bag, a restarted sim): silence is counted from now. Kept as it was, the beat would
        read fresh until the clock caught up with it, and a dead input would pass as alive."""
        if self.last_beat_s is not None and self.last_beat_s - now_s > self.timeout_s:
            self.last_beat_s = now_s

    def reset(self) -> None:
        self.last_beat_s = None
        self.beats = 0

    def age_s(self, now_s: float) -> float | None:
        return None if self.last_beat_s is None else now_s - self.last_beat_s

    def check(self, now_s: float) -> CheckResult:
        if self.timeout_s == 0:
            return ok(self.result_name, 'not monitored')
        self._rebase_if_clock_went_back(now_s)
        age = self.age_s(now_s)
        if age is None:
            return CheckResult(self.result_name, Level.STALE, f'no {self.name} received yet',
                               {'timeout_s': self.timeout_s})
        values = {'age_s': round(age, 4), 'timeout_s': self.timeout_s, 'beats': self.beats}
        if age > self.timeout_s:
            return CheckResult(self.result_name, Level.STALE, f'no {self.name} for {age:.3f} s '
                               f'(timeout {self.timeout_s:g} s)', values)
        return ok(self.result_name, **values)
