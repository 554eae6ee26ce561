"""Key-frame gating for the vision thread: encode a frame only when the scene has changed.

A robot that waits, or holds still while its policy thinks, sees the same scene frame after
frame; encoding each one costs the vision encoder's full time (on a real VLA the largest stage
per frame) for an embedding that says nothing new. The gate compares each frame with the last
one encoded (the anchor) on a small colour thumbnail, area-averaged so that sensor noise shrinks
while an edge that moves still shows: the largest change of any thumbnail cell in any channel,
in levels (0-255). Per channel rather than grey, so a change of colour at equal brightness (a red
block swapped for a purple one: 7 grey levels, 130 in blue) counts. Below `min_change`, the
anchor's embedding stands for the new frame and is re-stamped with its time. Comparing with the
anchor, not the previous frame, means slow drift adds up until it counts.

The gate depends only on the frames and their stamps, never on wall time, so a lockstep replay
makes the same decisions every time. It encodes anyway when the anchor is `max_interval_s` old by
the frames' stamps, when a stamp is not later than the anchor's (unstamped frames, a clock that
jumped back), and when the frame's size changes; `reset` makes the next frame an anchor.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# 128 px frames -> 4x4-pixel cells: sensor noise / 4; a 1 px edge shift moves a cell by 1/4 of
# the edge's contrast (at 640x480, 20x15-pixel cells: 1/15 or less)
THUMB_SIDE = 32
# vla_node's defaults (README "Key frames"): just above the sim's sensor noise (8.9 levels per
# channel); the executor's max_action_age_s.
DEFAULT_MIN_CHANGE = 12.0
DEFAULT_MAX_INTERVAL_S = 0.3


@dataclass(frozen=True)
class KeyFrameCheck:
    """What the gate made of one frame."""

    encode: bool
    change: float          # largest cell/channel difference from the anchor (inf: no anchor)
    thumbnail: np.ndarray
    shape: tuple[int, ...]


class KeyFrameGate:
    """Decides per frame whether it must be encoded; `anchor` it once its embedding exists."""

    def __init__(self, min_change: float, max_interval_s: float, thumb_side: int = THUMB_SIDE):
        if not 0.0 <= min_change <= 255.0:
            raise ValueError(f'min_change must be in [0, 255] levels, got {min_change}')
        if not max_interval_s >= 0.0:
            raise ValueError(f'max_interval_s must be >= 0, got {max_interval_s}')
        if thumb_side < 4:
            raise ValueError(f'thumb_side must be >= 4, got {thumb_side}')
        self.min_change = float(min_change)
        self.max_interval_s = float(max_interval_s)
        self.thumb_side = int(thumb_side)
        self._anchor: np.ndarray | None = None
        self._anchor_shape: tuple[int, ...] | None = None
        self._anchor_stamp_s = 0.0

    @property
    def enabled(self) -> bool:
        return self.min_change > 0.0 and self.max_interval_s > 0.0

    def thumbnail(self, rgb: np.ndarray) -> np.ndarray:
        """Area-averaged to thumb_side x thumb_side x 3 (aspect not kept: only change matters)."""
        return cv2.resize(rgb.astype(np.float32), (self.thumb_side, self.thumb_side),   # exact
                          interpolation=cv2.INTER_AREA)                                 # means

    def assess(self, rgb: np.ndarray, stamp_s: float) -> KeyFrameCheck:
        """Whether this frame must be encoded, and how much it differs from the anchor.

        Anything but an RGB uint8 frame is passed on to be encoded: the encoder says what is
        wrong with it."""
        shape = tuple(getattr(rgb, 'shape', ()))
        usable = (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
                  and rgb.shape[2] == 3 and rgb.size > 0)
        if not self.enabled or not usable:
            return KeyFrameCheck(True, float('inf'), np.empty(0, np.float32), shape)
        thumb = self.thumbnail(rgb)
        if self._anchor is None or shape != self._anchor_shape:
            return KeyFrameCheck(True, float('inf'), thumb, shape)
        change = float(np.max(np.abs(thumb - self._anchor)))
        elapsed = stamp_s - self._anchor_stamp_s
        encode = (change >= self.min_change or not 0.0 < elapsed < self.max_interval_s)
        return KeyFrameCheck(encode, change, thumb, shape)

    def anchor(self, check: KeyFrameCheck, stamp_s: float) -> None:
        """The frame of `check` was encoded: later frames are compared with it."""
        if self.enabled and check.thumbnail.size:
            self._anchor, self._anchor_shape = check.thumbnail, check.shape
            self._anchor_stamp_s = stamp_s

    def reset(self) -> None:
        """Forget the anchor: the next frame is encoded."""
        self._anchor = self._anchor_shape = None
