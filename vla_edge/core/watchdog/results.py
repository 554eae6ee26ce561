"""What every watchdog check returns: a named result with a level, a reason and measured values.

The levels mirror diagnostic_msgs/DiagnosticStatus (OK=0, WARN=1, ERROR=2, STALE=3), so the node
turns a result into a DiagnosticStatus with `bytes([result.level])` and `values` as KeyValues.
ERROR and STALE are faults: they veto and latch. WARN is reported but lets commands through
(a clamped command, a fault not yet persistent).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

Value = float | int | str


class Level(IntEnum):
    """Severity, numerically equal to DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Region:
    """A rectangle of the original frame (pixels) and what is wrong with it, for reports and
    the debug overlay."""

    x: int
    y: int
    width: int
    height: int
    kind: str


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. `name` is stable (diagnostics key); `reason` is for people."""

    name: str
    level: Level
    reason: str
    values: Mapping[str, Value] = field(default_factory=dict)
    regions: tuple[Region, ...] = ()

    @property
    def fault(self) -> bool:
        """ERROR or STALE: the watchdog must not pass commands while this holds."""
        return self.level >= Level.ERROR

    def describe(self) -> str:
        return f'{self.name}: {self.reason}'


def ok(name: str, reason: str = 'ok', **values: Value) -> CheckResult:
    return CheckResult(name, Level.OK, reason, values)


def not_applicable(name: str, why: str, **values: Value) -> CheckResult:
    """A check that cannot judge this input is OK, and says why, so it never vetoes blindly."""
    return CheckResult(name, Level.OK, f'not applicable: {why}', values)


def worst(results: Iterable[CheckResult]) -> Level:
    return max((r.level for r in results), default=Level.OK)


def fault_reasons(results: Iterable[CheckResult]) -> tuple[str, ...]:
    return tuple(r.describe() for r in results if r.fault)
