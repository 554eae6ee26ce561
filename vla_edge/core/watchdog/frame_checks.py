"""Camera frame health, one check per function (plus the frozen-stream detector, which needs
memory). All content checks work on one grey image downscaled once (`prepare_frame`), so running
them all on a 640x480 frame costs about a millisecond.

Why these: a policy acting on a stale, frozen, black, blown-out, blurred or partly covered image
acts on a world it cannot see. Each function returns a CheckResult; the FrameChecker (in
frame_checker.py) runs the enabled ones and makes single-frame glitches a warning, not a veto.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

from vla_edge.core.watchdog.results import CheckResult, Level, Region, ok


@dataclass(frozen=True)
class PreparedFrame:
    """The shared inputs of the checks: a grey analysis image and a smaller one for the flow."""

    grey: np.ndarray        # uint8 (h, w), longer side <= analysis_max_side
    flow_grey: np.ndarray   # uint8, longer side <= flow_max_side
    width: int              # of the original frame
    height: int


def format_problem(frame: object) -> str | None:
    """Why `frame` is not an RGB uint8 (H, W, 3) array, or None if it is."""
    if not isinstance(frame, np.ndarray):
        return f'frame is a {type(frame).__name__}, not a numpy array'
    if frame.dtype != np.uint8:
        return f'frame dtype is {frame.dtype}, expected uint8'
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        return f'frame shape is {frame.shape}, expected (H, W, 3)'
    return None


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def prepare_frame(frame: np.ndarray, analysis_max_side: int = 320,
                  flow_max_side: int = 80) -> PreparedFrame:
    """Downscale once (area averaging, which also averages out sensor noise), then convert to
    grey: the cost of every later check is bounded by analysis_max_side, not the camera."""
    height, width = frame.shape[:2]
    size = _fit(width, height, analysis_max_side)
    small = frame if size == (width, height) else cv2.resize(frame, size,
                                                             interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    flow_size = _fit(size[0], size[1], flow_max_side)
    flow_grey = grey if flow_size == size else cv2.resize(grey, flow_size,
                                                          interpolation=cv2.INTER_AREA)
    return PreparedFrame(grey, flow_grey, width, height)


def check_stale(stamp_s: float | None, now_s: float, max_age_s: float) -> CheckResult:
    """Stale when the newest frame's stamp is older than max_age_s, or there is none. A stamp
    far in the future means the clocks disagree, so its age cannot be judged: an error."""
    name = 'frame.stale'
    if stamp_s is None:
        return CheckResult(name, Level.STALE, 'no frame received yet')
    age = now_s - stamp_s
    values = {'age_s': round(age, 4), 'max_age_s': max_age_s}
    if age > max_age_s:
        return CheckResult(name, Level.STALE,
                           f'newest frame is {age:.3f} s old (limit {max_age_s:g} s)', values)
    if age < -max_age_s:
        return CheckResult(name, Level.ERROR, f'frame stamp is {-age:.3f} s in the future: '
                           'camera and watchdog clocks disagree', values)
    return ok(name, **values)


def check_format(width: int, height: int, encoding: str | None, expected_width: int = 0,
                 expected_height: int = 0, encodings: Collection[str] = ()) -> CheckResult:
    """Size and encoding against the configured camera (0 / empty: anything goes). A wrong size
    means the wrong camera or a driver reconfigured behind the policy's back."""
    name = 'frame.format'
    values = {'width': width, 'height': height, 'encoding': encoding or ''}
    problems = []
    if (expected_width and width != expected_width) or \
            (expected_height and height != expected_height):
        problems.append(f'size {width}x{height}, expected '
                        f'{expected_width or "any"}x{expected_height or "any"}')
    if encodings and encoding is not None and encoding.lower() not in {e.lower()
                                                                      for e in encodings}:
        problems.append(f'encoding {encoding!r} not in {sorted(encodings)}')
    if problems:
        return CheckResult(name, Level.ERROR, '; '.join(problems), values)
    return ok(name, **values)


def check_dark(grey: np.ndarray, level: float, max_fraction: float) -> CheckResult:
    fraction = np.count_nonzero(grey <= level) / grey.size
    values = {'dark_fraction': round(fraction, 4), 'mean': round(float(grey.mean()), 2)}
    if fraction > max_fraction:
        return CheckResult('frame.dark', Level.ERROR, f'{fraction:.0%} of pixels are dark '
                           f'(<= {level:g}; limit {max_fraction:.0%})', values)
    return ok('frame.dark', **values)


def check_saturated(grey: np.ndarray, level: float, max_fraction: float) -> CheckResult:
    fraction = np.count_nonzero(grey >= level) / grey.size
    values = {'saturated_fraction': round(fraction, 4), 'mean': round(float(grey.mean()), 2)}
    if fraction > max_fraction:
        return CheckResult('frame.saturated', Level.ERROR, f'{fraction:.0%} of pixels are '
                           f'saturated (>= {level:g}; limit {max_fraction:.0%})', values)
    return ok('frame.saturated', **values)


def laplacian_variance(grey: np.ndarray) -> float:
    """Edge energy: sharp images have strong second derivatives, blurred ones do not."""
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))
    return float(std[0, 0]) ** 2


def check_blur(grey: np.ndarray, min_variance: float) -> CheckResult:
    var = laplacian_variance(grey)
    values = {'laplacian_var': round(var, 2), 'min_laplacian_var': min_variance}
    if var < min_variance:
        return CheckResult('frame.blur', Level.ERROR, f'blurred: Laplacian variance {var:.1f} '
                           f'< {min_variance:g}', values)
    return ok('frame.blur', **values)


def block_stats(grey: np.ndarray, cols: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block mean and standard deviation, (rows, cols) each, by two area resizes (exact
    block averages when the grid divides the image, area-weighted otherwise)."""
    g = grey.astype(np.float32) - 128.0   # centred: less cancellation in E[g^2] - E[g]^2
    mean = cv2.resize(g, (cols, rows), interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(g * g, (cols, rows), interpolation=cv2.INTER_AREA)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    return mean + 128.0, std


def check_blocks(grey: np.ndarray, cols: int, rows: int, dark_level: float,
                 saturated_level: float, flat_std: float, max_fraction: float,
                 frame_size: tuple[int, int] | None = None) -> CheckResult:
    """Part of the view covered or washed out (a hand, a lens cap, glare), as Autoware's
    image_diagnostics does it: classify a grid of blocks as dark, saturated or flat (no
    texture, not even sensor noise) and flag the frame when too many are bad.

    Regions are reported in the pixels of `frame_size` (width, height), default the grey's.
    """
    name = 'frame.blocked'
    mean, std = block_stats(grey, cols, rows)
    kinds = np.full((rows, cols), '', dtype=object)
    kinds[std < flat_std] = 'flat'
    kinds[mean >= saturated_level] = 'saturated'
    kinds[mean <= dark_level] = 'dark'
    bad = kinds != ''
    fraction = float(bad.mean())
    width, height = frame_size or (grey.shape[1], grey.shape[0])
    xs = np.linspace(0, width, cols + 1).round().astype(int)
    ys = np.linspace(0, height, rows + 1).round().astype(int)
    regions = tuple(Region(int(xs[c]), int(ys[r]), int(xs[c + 1] - xs[c]),
                           int(ys[r + 1] - ys[r]), str(kinds[r, c]))
                    for r, c in zip(*np.nonzero(bad)))
    values = {'bad_block_fraction': round(fraction, 4), 'dark_blocks': int((kinds == 'dark').sum()),
              'saturated_blocks': int((kinds == 'saturated').sum()),
              'flat_blocks': int((kinds == 'flat').sum()), 'blocks': rows * cols}
    if fraction > max_fraction:
        where = ', '.join(f'r{r}c{c}:{kinds[r, c]}' for r, c in zip(*np.nonzero(bad)))
        return CheckResult(name, Level.ERROR, f'{fraction:.0%} of blocks are dark, saturated or '
                           f'flat (limit {max_fraction:.0%}): {where}', values, regions)
    return CheckResult(name, Level.OK, 'ok', values, regions)


class FrozenDetector:
    """A camera that keeps publishing the same picture (a hung driver re-stamping its last
    buffer) passes the stale check; this catches it.

    Frames count as identical when their mean absolute grey difference is at most
    max_mean_diff. A live sensor never repeats itself exactly: its noise alone differs frame to
    frame (>= 0.8 grey levels in the sim, whose renderer adds per-frame noise), so a robot
    standing still in a static scene is not frozen. A noise-free synthetic camera is: disable
    the check there. Stamps measure the duration; a repeated stamp (a duplicate delivery) is
    not a new frame.
    """

    def __init__(self, max_mean_diff: float = 0.2, min_frames: int = 5,
                 min_duration_s: float = 0.5):
        self.max_mean_diff = max_mean_diff
        self.min_frames = min_frames
        self.min_duration_s = min_duration_s
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None
        self._prev_stamp_s = -np.inf
        self._identical = 1            # frames in the current run of identical ones
        self._since_s: float | None = None
        self._last = ok('frame.frozen', 'first frame')

    def update(self, grey: np.ndarray, stamp_s: float) -> CheckResult:
        if stamp_s <= self._prev_stamp_s:
            return self._last
        prev, self._prev = self._prev, grey
        prev_stamp, self._prev_stamp_s = self._prev_stamp_s, stamp_s
        if prev is None or prev.shape != grey.shape:
            self._identical, self._since_s = 1, None
            self._last = ok('frame.frozen', 'first frame')
            return self._last
        diff = float(cv2.mean(cv2.absdiff(grey, prev))[0])
        if diff <= self.max_mean_diff:
            self._identical += 1
            self._since_s = prev_stamp if self._since_s is None else self._since_s
        else:
            self._identical, self._since_s = 1, None
        duration = 0.0 if self._since_s is None else stamp_s - self._since_s
        values = {'mean_diff': round(diff, 3), 'identical_frames': self._identical,
                  'identical_for_s': round(duration, 3)}
        if self._identical >= self.min_frames and duration >= self.min_duration_s:
            self._last = CheckResult('frame.frozen', Level.ERROR, f'{self._identical} identical '
                                     f'frames over {duration:.2f} s (mean difference {diff:.3f} '
                                     f'<= {self.max_mean_diff:g})', values)
        else:
            self._last = ok('frame.frozen', **values)
        return self._last
