"""Does the camera see the motion that is commanded? Dense optical flow on a small grey image.

Two faults, each only when it lasts `window_s`: commanded to move but the image shows no motion
(a frozen or disconnected camera that the other checks missed, an arm that is stuck, a camera
pointing elsewhere), and large image motion while commanded still (a knocked or loose camera,
an arm drifting, something big moving in the workspace).

What counts as "the image moves" depends on the mount:
- fixed: the arm covers a small, unknown part of the view and the rest is static, so the median
  flow over the image is ~0 even when the arm moves. The evidence is the fraction of pixels whose
  flow speed is above the noise floor (sim: >= 3% when the arm moves, <= 0.2% from noise).
- wrist: the whole view moves with the arm, so the ego-motion estimate is the median flow speed
  over textured pixels, the only ones where flow is measurable; a median shrugs off a few
  independently moving objects. With too little texture the check is not applicable.

Flow compares the newest frame with one `flow_interval_s` older, so a slow arm moves far enough
to measure, and speeds are in image widths per second, independent of resolution and frame rate.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from vla_edge.core.watchdog.config import MotionCheckConfig
from vla_edge.core.watchdog.results import CheckResult, Level, not_applicable, ok

NAME = 'motion.consistency'


@dataclass(frozen=True)
class _Frame:
    stamp_s: float
    grey: np.ndarray
    speed_min: float   # commanded speed range since the previous frame
    speed_max: float


def flow_speed(older: np.ndarray, newer: np.ndarray, dt_s: float) -> np.ndarray:
    """Per-pixel flow speed in image widths per second (Farneback; ~0.6 ms at 80x80)."""
    flow = cv2.calcOpticalFlowFarneback(older, newer, None, pyr_scale=0.5, levels=2, winsize=9,
                                        iterations=2, poly_n=5, poly_sigma=1.1, flags=0)
    return cv2.magnitude(flow[..., 0], flow[..., 1]) / (newer.shape[1] * max(dt_s, 1e-6))


class MotionCheck:
    """Feed each frame's small grey image (PreparedFrame.flow_grey) with its stamp and the
    commanded speed (norm of the velocity dims) over the time since the previous frame."""

    def __init__(self, config: MotionCheckConfig | None = None):
        self.config = config or MotionCheckConfig()
        self.reset()

    def reset(self) -> None:
        self._frames: deque[_Frame] = deque()
        self._no_motion_since_s: float | None = None
        self._unexpected_since_s: float | None = None
        self._last = not_applicable(NAME, 'no frames yet')

    def update(self, flow_grey: np.ndarray, stamp_s: float, commanded_speed: float,
               commanded_speed_max: float | None = None) -> CheckResult:
        """`commanded_speed` is the lowest commanded speed since the previous frame and
        `commanded_speed_max` the highest (default: the same): "moving" needs the robot
        commanded to move throughout, "still" needs it still throughout."""
        cfg = self.config
        if cfg.camera_mount == 'off':
            return not_applicable(NAME, 'camera_mount is off')
        frames = self._frames
        # Stamps that go back by more than a gap are a new timeline (a looped bag, a future
        # stamp before them): left as they were, this check would skip every frame until the
        # clock caught up with the newest stamp, blind all that time.
        if frames and 0.0 <= frames[-1].stamp_s - stamp_s <= cfg.max_frame_gap_s:
            return self._last   # a duplicate or out-of-order frame adds nothing
        if frames and (abs(stamp_s - frames[-1].stamp_s) > cfg.max_frame_gap_s
                       or frames[-1].grey.shape != flow_grey.shape):
            self.reset()
            frames = self._frames
        speed_max = commanded_speed if commanded_speed_max is None else commanded_speed_max
        frames.append(_Frame(stamp_s, flow_grey, commanded_speed, speed_max))
        ref_index = self._reference_index(stamp_s)
        if ref_index is None:
            self._last = not_applicable(NAME, 'collecting frames')
            return self._last
        for _ in range(ref_index):
            frames.popleft()
        ref = frames[0]
        later = list(frames)[1:]
        cmd_min = min(f.speed_min for f in later)
        cmd_max = max(f.speed_max for f in later)
        speed = flow_speed(ref.grey, flow_grey, stamp_s - ref.stamp_s)
        if cfg.camera_mount == 'wrist':
            measured = self._wrist(flow_grey, speed)
        else:
            measured = self._fixed(speed)
        if measured is None:   # too little texture for a wrist camera to see ego-motion
            self._no_motion_since_s = self._unexpected_since_s = None
            self._last = not_applicable(NAME, 'too little texture to measure motion')
            return self._last
        seen_moving, too_much, values = measured
        values.update(commanded_speed_min=round(cmd_min, 4), commanded_speed_max=round(cmd_max, 4))
        self._last = self._judge(stamp_s, cmd_min, cmd_max, seen_moving, too_much, values)
        return self._last

    def _reference_index(self, stamp_s: float) -> int | None:
        """Index of the newest earlier frame at least flow_interval_s old."""
        target = stamp_s - self.config.flow_interval_s
        best = None
        for i, frame in enumerate(list(self._frames)[:-1]):
            if frame.stamp_s <= target + 1e-9:
                best = i
        return best

    def _fixed(self, speed: np.ndarray) -> tuple[bool, bool, dict]:
        cfg = self.config
        moving = speed > cfg.pixel_speed_min
        fraction = float(np.count_nonzero(moving)) / moving.size
        median = float(np.median(speed[moving])) if fraction > 0 else 0.0
        values = {'moving_fraction': round(fraction, 4), 'moving_median_speed': round(median, 4)}
        return (fraction >= cfg.fixed_min_moving_fraction,
                fraction > cfg.fixed_max_still_fraction, values)

    def _wrist(self, grey: np.ndarray, speed: np.ndarray) -> tuple[bool, bool, dict] | None:
        cfg = self.config
        gx = cv2.Sobel(grey, cv2.CV_16S, 1, 0)
        gy = cv2.Sobel(grey, cv2.CV_16S, 0, 1)
        textured = (np.abs(gx.astype(np.int32)) + np.abs(gy)) > cfg.texture_min_gradient
        texture = float(np.count_nonzero(textured)) / textured.size
        if texture < cfg.texture_min_fraction:
            return None
        ego = float(np.median(speed[textured]))
        values = {'ego_speed': round(ego, 4), 'textured_fraction': round(texture, 4)}
        return ego >= cfg.wrist_min_speed, ego >= cfg.wrist_max_still_speed, values

    def _judge(self, stamp_s: float, cmd_min: float, cmd_max: float, seen_moving: bool,
               too_much: bool, values: dict) -> CheckResult:
        cfg = self.config
        self._no_motion_since_s = _since(
            self._no_motion_since_s, cmd_min >= cfg.moving_command_min and not seen_moving,
            stamp_s)
        self._unexpected_since_s = _since(
            self._unexpected_since_s, cmd_max <= cfg.still_command_max and too_much, stamp_s)
        no_motion = 0.0 if self._no_motion_since_s is None else stamp_s - self._no_motion_since_s
        unexpected = (0.0 if self._unexpected_since_s is None
                      else stamp_s - self._unexpected_since_s)
        values.update(no_motion_for_s=round(no_motion, 3), unexpected_motion_for_s=round(
            unexpected, 3))
        if no_motion >= cfg.window_s:
            return CheckResult(NAME, Level.ERROR, f'commanded to move (speed >= {cmd_min:.2f}) '
                               f'but the image shows no motion for {no_motion:.2f} s', values)
        if unexpected >= cfg.window_s:
            return CheckResult(NAME, Level.ERROR, f'image moves ({cfg.camera_mount} camera) '
                               f'while commanded still for {unexpected:.2f} s', values)
        return ok(NAME, **values)


def _since(since_s: float | None, condition: bool, now_s: float) -> float | None:
    """When an uninterrupted run of `condition` began (None: not holding now)."""
    if not condition:
        return None
    return now_s if since_s is None else since_s
