"""All enabled frame checks on one frame, with one config, at camera rate.

The frame is downscaled and converted to grey once; every content check shares that image.
Content checks (dark, saturated, blur, blocked) must fail on `min_bad_frames` consecutive
frames before they are an error, so one glitched frame warns instead of stopping the robot;
stale, format and frozen are already judged over time or are not glitches.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_edge.core.watchdog.config import FrameCheckConfig
from vla_edge.core.watchdog.frame_checks import (
    FrozenDetector,
    PreparedFrame,
    check_blocks,
    check_blur,
    check_dark,
    check_format,
    check_saturated,
    check_stale,
    format_problem,
    prepare_frame,
)
from vla_edge.core.watchdog.results import CheckResult, Level, ok

_PERSISTENT = ('dark', 'saturated', 'blur', 'blocked')


@dataclass(frozen=True)
class FrameReport:
    """The results for one frame, and the prepared images (the motion check reuses them)."""

    results: tuple[CheckResult, ...]
    prepared: PreparedFrame | None

    @property
    def faults(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.fault)


class FrameChecker:
    """Feed every frame to `check`; call `check_stale` from a timer, since a dead camera sends
    no frame to be checked."""

    def __init__(self, config: FrameCheckConfig | None = None, flow_max_side: int = 80,
                 stall_gap_s: float = 0.0, call_period_s: float = 0.0):
        self.config = config or FrameCheckConfig()
        self.flow_max_side = flow_max_side
        self.stall_gap_s = stall_gap_s      # 0: no stall allowance (note_awake)
        self.call_period_s = call_period_s  # how often a running watchdog calls in
        self.stalls = 0                     # gaps counted as the watchdog's own stalls
        self._awake_s: float | None = None
        self._blind_s = 0.0   # time since the newest frame's stamp that the watchdog stalled
        self.frozen = FrozenDetector(self.config.frozen_max_mean_diff,
                                     self.config.frozen_min_frames,
                                     self.config.frozen_min_duration_s)
        self.last_stamp_s: float | None = None
        self.last_report = FrameReport((), None)
        self._bad_streak = dict.fromkeys(_PERSISTENT, 0)
        self.timeline_restarts = 0   # a future stamp gave way to an older one (note_stamp)

    def enabled(self, check: str) -> bool:
        return check in self.config.checks

    def reset(self) -> None:
        """Forget history (a new camera or a re-configuration)."""
        self.frozen.reset()
        self.last_stamp_s = None
        self.last_report = FrameReport((), None)
        self._bad_streak = dict.fromkeys(_PERSISTENT, 0)
        self._awake_s, self._blind_s = None, 0.0

    def note_stamp(self, stamp_s: float, now_s: float) -> None:
        """Keep the newest frame stamp. A kept stamp that lies in the future (clocks that
        disagree, a corrupt stamp, a clock that went back: a looped bag) gives way to the next
        frame: otherwise one frame stamped an hour ahead would make every good frame after it
        look older, and the watchdog could not be reset for that hour. The frozen detector
        starts again then too, since it skips frames not newer than the last it compared."""
        last = self.last_stamp_s
        if last is None or stamp_s > last:
            self.last_stamp_s = stamp_s
            self._blind_s = 0.0
        elif last - now_s > self.config.max_age_s:
            self.last_stamp_s = stamp_s
            self._blind_s = 0.0
            self.frozen.reset()
            self.timeline_restarts += 1

    def note_awake(self, now_s: float) -> None:
        """The watchdog runs at now_s. A gap of more than `stall_gap_s` since it last ran is a
        stall of the watchdog itself (a running one is called every `call_period_s`): frames
        that came meanwhile may be queued behind it, unseen, and a callback that runs before
        them would find the newest frame it knows too old. So the stall's length, less one
        call period, is not held against the camera: a frame is stale once it is older than
        max_age_s of the watchdog's own running time. A dead camera is caught that long after
        its last frame plus the watchdog's stalls since, which no number of stalls can undo."""
        last = self._awake_s
        if last is not None and now_s < last - self.config.max_age_s:   # the clock went back
            self._awake_s, self._blind_s = now_s, 0.0
            return
        if last is not None and self.stall_gap_s > 0.0 and now_s - last > self.stall_gap_s:
            self._blind_s += now_s - last - self.call_period_s
            self.stalls += 1
        if last is None or now_s > last:
            self._awake_s = now_s

    def check_stale(self, now_s: float) -> CheckResult:
        if not self.enabled('stale'):
            return ok('frame.stale', 'disabled')
        result = check_stale(self.last_stamp_s, now_s, self.config.max_age_s)
        if result.level == Level.STALE and self.last_stamp_s is not None and \
                0.0 < now_s - self.last_stamp_s - self._blind_s <= self.config.max_age_s:
            return CheckResult(result.name, Level.WARN,
                               f'{result.reason}, {self._blind_s:.3f} s of it a stall of the '
                               'watchdog itself: waiting for frames queued behind it',
                               dict(result.values, watchdog_stalled_s=round(self._blind_s, 4)))
        return result

    def check(self, frame: np.ndarray, stamp_s: float, now_s: float,
              encoding: str | None = 'rgb8') -> FrameReport:
        """Run the enabled checks on one RGB uint8 (H, W, 3) frame stamped `stamp_s`.

        `encoding` is the message's encoding before conversion to RGB (None: not checked).
        """
        cfg = self.config
        self.note_stamp(stamp_s, now_s)
        results = [self.check_stale(now_s)]
        problem = format_problem(frame)
        if problem is not None:
            results.append(CheckResult('frame.format', Level.ERROR, problem))
            self.last_report = FrameReport(tuple(results), None)
            return self.last_report
        height, width = frame.shape[:2]
        if self.enabled('format'):
            results.append(check_format(width, height, encoding, cfg.expected_width,
                                        cfg.expected_height, cfg.encodings))
        prepared = prepare_frame(frame, cfg.analysis_max_side, self.flow_max_side)
        grey = prepared.grey
        if self.enabled('frozen'):
            results.append(self.frozen.update(grey, stamp_s))
        content: dict[str, Callable[[], CheckResult]] = {
            'dark': lambda: check_dark(grey, cfg.dark_level, cfg.dark_max_fraction),
            'saturated': lambda: check_saturated(grey, cfg.saturated_level,
                                                 cfg.saturated_max_fraction),
            'blur': lambda: check_blur(grey, cfg.blur_min_laplacian_var),
            'blocked': lambda: check_blocks(grey, cfg.block_cols, cfg.block_rows,
                                            cfg.block_dark_level, cfg.block_saturated_level,
                                            cfg.block_flat_std, cfg.blocked_max_fraction,
                                            (width, height)),
        }
        for name, run in content.items():
            if self.enabled(name):
                results.append(self._persist(name, run()))
        self.last_report = FrameReport(tuple(results), prepared)
        return self.last_report

    def _persist(self, check: str, result: CheckResult) -> CheckResult:
        """An error only after min_bad_frames bad frames in a row; a warning until then."""
        if not result.fault:
            self._bad_streak[check] = 0
            return result
        self._bad_streak[check] += 1
        streak, needed = self._bad_streak[check], self.config.min_bad_frames
        if streak >= needed:
            return result
        return CheckResult(result.name, Level.WARN, f'{result.reason} ({streak}/{needed} frames)',
                           result.values, result.regions)
