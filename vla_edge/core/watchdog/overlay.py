"""The watchdog's verdict drawn on the frame, for a debug image topic: an operator sees at a glance
which blocks were judged dark, saturated or flat, and why commands are held."""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from vla_edge.core.watchdog.results import CheckResult, Level, worst

# RGB, as the frames are
LEVEL_COLOURS = {Level.OK: (40, 200, 60), Level.WARN: (255, 190, 0), Level.ERROR: (230, 30, 30),
                 Level.STALE: (150, 150, 150)}
REGION_COLOURS = {'dark': (0, 120, 255), 'saturated': (255, 0, 255), 'flat': (255, 255, 0)}


def draw_overlay(frame: np.ndarray, results: Iterable[CheckResult], banner: str | None = None,
                 min_width: int = 320, max_lines: int = 6) -> np.ndarray:
    """A copy of `frame` (RGB uint8), upscaled to at least `min_width` so text stays legible,
    with bad regions outlined and one line per non-OK result (worst first)."""
    results = list(results)
    scale = max(1.0, min_width / frame.shape[1])
    out = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) \
        if scale > 1.0 else frame.copy()
    thickness = max(1, out.shape[1] // 320)
    for result in results:
        for region in result.regions:
            p0 = (int(region.x * scale), int(region.y * scale))
            p1 = (int((region.x + region.width) * scale) - 1,
                  int((region.y + region.height) * scale) - 1)
            cv2.rectangle(out, p0, p1, REGION_COLOURS.get(region.kind, (255, 255, 255)),
                          thickness)
    level = worst(results)
    lines = [(banner or level.name, level)]
    notable = sorted((r for r in results if r.level != Level.OK), key=lambda r: -r.level)
    lines += [(r.describe(), r.level) for r in notable[:max_lines]]
    if len(notable) > max_lines:
        lines.append((f'... {len(notable) - max_lines} more', Level.WARN))
    font_scale = 0.4 * out.shape[1] / 320
    line_h = int(16 * out.shape[1] / 320)
    max_chars = max(10, int(out.shape[1] / (8 * font_scale / 0.4)))
    for k, (text, lvl) in enumerate(lines):
        y = (k + 1) * line_h
        text = text if len(text) <= max_chars else text[:max_chars - 3] + '...'
        cv2.putText(out, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                    thickness + 2, cv2.LINE_AA)
        cv2.putText(out, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, LEVEL_COLOURS[lvl],
                    thickness, cv2.LINE_AA)
    return out
