import cv2
import numpy as np

from vla_edge.core.watchdog import FrameCheckConfig, FrameChecker, draw_overlay
from vla_edge.core.watchdog.overlay import REGION_COLOURS


def test_overlay_outlines_bad_blocks_and_lists_problems(clean_frames):
    frame = clean_frames[0].copy()
    frame[:, :64] = 0
    report = FrameChecker(FrameCheckConfig(min_bad_frames=1)).check(frame, 0.0, 0.0)
    assert report.faults
    out = draw_overlay(frame, report.results, banner='HOLD')
    assert out.shape == (320, 320, 3) and out.dtype == np.uint8     # upscaled to be legible
    assert frame[:, :64].max() == 0                                  # the input is untouched
    # dark blocks are outlined in their colour inside the black half, below the text
    assert np.all(out[200:, :160] == REGION_COLOURS['dark'], axis=2).any()
    # the clean half is as it was, upscaled
    plain = cv2.resize(frame, (320, 320), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(out[200:, 170:], plain[200:, 170:])
    assert not np.array_equal(out[:100], plain[:100])                # the text lines


def test_overlay_on_a_clean_frame_only_writes_the_banner(clean_frames):
    frame = np.ascontiguousarray(np.tile(clean_frames[1], (4, 4, 1)))   # 512 wide: no upscale
    out = draw_overlay(frame, FrameChecker().check(frame, 0.0, 0.0).results)
    assert out.shape == frame.shape
    changed = np.any(out != frame, axis=2)
    assert changed[:30].any() and not changed[40:].any()
