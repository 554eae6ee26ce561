import time

import cv2
import numpy as np
import pytest

from vla_edge.core.watchdog import FrameCheckConfig, FrameChecker, FrozenDetector, Level
from vla_edge.core.watchdog.frame_checks import (
    check_blocks,
    check_blur,
    check_dark,
    check_format,
    check_saturated,
    check_stale,
    prepare_frame,
)

CFG = FrameCheckConfig()


def grey(frame):
    return prepare_frame(frame, CFG.analysis_max_side).grey


def blocks(frame):
    return check_blocks(grey(frame), CFG.block_cols, CFG.block_rows, CFG.block_dark_level,
                        CFG.block_saturated_level, CFG.block_flat_std, CFG.blocked_max_fraction,
                        (frame.shape[1], frame.shape[0]))


def test_clean_sim_frames_pass_every_content_check(clean_frames):
    for frame in clean_frames:
        g = grey(frame)
        assert check_dark(g, CFG.dark_level, CFG.dark_max_fraction).level == Level.OK
        assert check_saturated(g, CFG.saturated_level, CFG.saturated_max_fraction).level == \
            Level.OK
        assert check_blur(g, CFG.blur_min_laplacian_var).level == Level.OK
        assert blocks(frame).level == Level.OK


def test_black_frame_is_dark(clean_frames):
    black = np.zeros_like(clean_frames[0])
    result = check_dark(grey(black), CFG.dark_level, CFG.dark_max_fraction)
    assert result.level == Level.ERROR and result.fault
    assert result.values['dark_fraction'] == 1.0
    assert 'dark' in result.reason


def test_white_frame_is_saturated(clean_frames):
    white = np.full_like(clean_frames[0], 255)
    result = check_saturated(grey(white), CFG.saturated_level, CFG.saturated_max_fraction)
    assert result.fault and result.values['saturated_fraction'] == 1.0


def test_gaussian_blur_is_detected_and_sharp_frames_are_not(clean_frames):
    for frame in clean_frames[:6]:
        sharp = check_blur(grey(frame), CFG.blur_min_laplacian_var)
        blurred = check_blur(grey(cv2.GaussianBlur(frame, (5, 5), 1.5)),
                             CFG.blur_min_laplacian_var)
        assert sharp.level == Level.OK
        assert blurred.fault, blurred.values
        assert blurred.values['laplacian_var'] < sharp.values['laplacian_var'] / 3


def test_half_black_frame_is_blocked_and_the_blocks_are_reported(clean_frames):
    frame = clean_frames[0].copy()
    frame[:, :64] = 0
    result = blocks(frame)
    assert result.fault
    assert result.values['dark_blocks'] == CFG.block_rows * CFG.block_cols // 2
    assert result.regions and all(r.kind == 'dark' and r.x + r.width <= 64 for r in result.regions)
    assert 'r0c0:dark' in result.reason


def test_flat_grey_patch_counts_as_flat_blocks(clean_frames):
    frame = clean_frames[1].copy()
    frame[:, 64:] = 128          # uniform, no noise: a smooth cover over half the lens
    result = blocks(frame)
    assert result.fault and result.values['flat_blocks'] >= 20


def test_stale_and_never_received():
    assert check_stale(None, 10.0, 0.5).level == Level.STALE
    assert check_stale(9.8, 10.0, 0.5).level == Level.OK
    old = check_stale(9.0, 10.0, 0.5)
    assert old.level == Level.STALE and old.values['age_s'] == pytest.approx(1.0)
    future = check_stale(12.0, 10.0, 0.5)
    assert future.level == Level.ERROR and 'future' in future.reason


def test_one_frame_stamped_in_the_future_does_not_outlive_the_next_good_frame(clean_frames):
    """The future-stamped frame is an error, but the next frame on the clock replaces its
    stamp, so the stale check (and a reset) can pass again at once, not an hour later."""
    checker = FrameChecker(FrameCheckConfig(checks=('stale',)))

    def stale(report):
        return next(r for r in report.results if r.name == 'frame.stale')

    assert stale(checker.check(clean_frames[0], 10.0, 10.01)).level == Level.OK
    assert stale(checker.check(clean_frames[1], 3610.0, 10.04)).level == Level.ERROR
    assert stale(checker.check(clean_frames[2], 10.06, 10.07)).level == Level.OK
    assert checker.check_stale(10.08).level == Level.OK and checker.last_stamp_s == 10.06
    checker.check(clean_frames[3], 10.03, 10.1)        # an older frame still does not go back
    assert checker.last_stamp_s == 10.06


def test_a_future_stamp_does_not_blind_the_frozen_check(clean_frames):
    """The frozen detector skips frames not newer than the last it compared. After one frame
    stamped an hour ahead it would skip every frame for that hour: a camera frozen right
    after it would pass. The stamp giving way restarts the detector."""
    checker = FrameChecker(FrameCheckConfig(checks=('stale', 'frozen')))

    def frozen(report):
        return next(r for r in report.results if r.name == 'frame.frozen')

    checker.check(clean_frames[0], 10.0, 10.0)
    checker.check(clean_frames[1], 3610.0, 10.03)   # corrupt stamp, or the clock went back
    levels = [frozen(checker.check(clean_frames[2], 10.0 + k / 30, 10.0 + k / 30)).level
              for k in range(2, 40)]
    assert checker.timeline_restarts == 1
    assert Level.ERROR in levels   # the same frame for over a second: frozen
    first = levels.index(Level.ERROR)
    assert first == 15   # as from a fresh start: 5 frames and 0.5 s after the first of them


def test_wrong_size_and_encoding():
    assert check_format(128, 128, 'rgb8', 128, 128, ('rgb8',)).level == Level.OK
    assert check_format(640, 480, 'rgb8', 0, 0, ('rgb8',)).level == Level.OK   # 0: any
    size = check_format(640, 480, 'rgb8', 128, 128, ('rgb8',))
    assert size.fault and '640x480' in size.reason
    enc = check_format(128, 128, 'mono8', 128, 128, ('rgb8', 'bgr8'))
    assert enc.fault and 'mono8' in enc.reason


def test_frozen_stream_is_detected_after_frames_and_time(clean_frames):
    det = FrozenDetector(max_mean_diff=0.2, min_frames=5, min_duration_s=0.5)
    g = grey(clean_frames[0])
    levels = [det.update(g, k / 30).level for k in range(20)]
    # 5 identical frames after 4/30 s, but 0.5 s only at frame 15
    assert levels[:15] == [Level.OK] * 15
    assert levels[15] == Level.ERROR and det.update(g, 20 / 30).fault
    assert det.update(grey(clean_frames[1]), 21 / 30).level == Level.OK   # it moved again


def test_duplicate_stamps_do_not_count_as_frozen(clean_frames):
    det = FrozenDetector(min_frames=3, min_duration_s=0.0)
    g = grey(clean_frames[0])
    for _ in range(10):
        result = det.update(g, 1.0)
    assert result.level == Level.OK


def test_static_scene_with_sensor_noise_is_not_frozen(sim_env):
    """A robot standing still for 3 s in the static sim scene: only noise changes, which is
    exactly what tells a live camera from a frozen one."""
    det = FrozenDetector(CFG.frozen_max_mean_diff, CFG.frozen_min_frames,
                         CFG.frozen_min_duration_s)
    results = [det.update(grey(sim_env.observe().image), k / 30) for k in range(90)]
    assert all(r.level == Level.OK for r in results)
    assert min(r.values.get('mean_diff', 99) for r in results) > 4 * CFG.frozen_max_mean_diff


def test_checker_makes_a_single_bad_frame_a_warning(clean_frames):
    checker = FrameChecker(FrameCheckConfig(min_bad_frames=3))
    black = np.zeros_like(clean_frames[0])

    def level(name, frame, t):
        return {r.name: r for r in checker.check(frame, t, t).results}[name].level

    assert level('frame.dark', clean_frames[0], 0.0) == Level.OK
    assert level('frame.dark', black, 0.1) == Level.WARN
    assert level('frame.dark', black, 0.2) == Level.WARN
    assert level('frame.dark', black, 0.3) == Level.ERROR
    assert level('frame.dark', clean_frames[1], 0.4) == Level.OK
    assert level('frame.dark', black, 0.5) == Level.WARN     # the streak starts over


def test_checker_runs_all_checks_and_reports_format_problems(clean_frames):
    checker = FrameChecker(FrameCheckConfig(expected_width=128, expected_height=128))
    report = checker.check(clean_frames[0], 1.0, 1.02, encoding='rgb8')
    names = {r.name for r in report.results}
    assert names == {'frame.stale', 'frame.format', 'frame.frozen', 'frame.dark',
                     'frame.saturated', 'frame.blur', 'frame.blocked'}
    assert not report.faults
    big = cv2.resize(clean_frames[0], (256, 256))
    assert [r.name for r in checker.check(big, 1.1, 1.12).faults] == ['frame.format']
    assert [r.name for r in checker.check(clean_frames[1], 1.2, 1.22, 'mono8').faults] == \
        ['frame.format']
    bad = checker.check(np.zeros((128, 128), np.uint8), 1.3, 1.32)
    assert [r.name for r in bad.faults] == ['frame.format'] and bad.prepared is None


def test_checker_stale_from_a_timer_and_disabled_checks(clean_frames):
    checker = FrameChecker(FrameCheckConfig(checks=('stale', 'dark')))
    assert checker.check_stale(5.0).level == Level.STALE           # never received
    report = checker.check(np.zeros_like(clean_frames[0]), 5.0, 5.0)
    assert {r.name for r in report.results} == {'frame.stale', 'frame.dark'}
    assert checker.check_stale(5.4).level == Level.OK
    assert checker.check_stale(5.6).level == Level.STALE           # the camera went quiet


def _camera_and_calls(checker, frames, until_s, camera_until_s, start_s=0.0):
    """A 30 Hz camera (until camera_until_s) and the watchdog called every 20 ms."""
    for k in range(round(start_s / 0.02), round(until_s / 0.02)):
        t = k * 0.02
        checker.note_awake(t)
        if t < camera_until_s and int(t * 30) != int((t - 0.02) * 30):
            checker.check(frames[k % 2], t, t)


def _stall_checker(stall_gap_s=0.05):
    return FrameChecker(FrameCheckConfig(max_age_s=0.09), stall_gap_s=stall_gap_s,
                        call_period_s=0.02)


def test_a_stall_of_the_watchdog_itself_waits_for_the_frames_queued_behind_it(clean_frames):
    """A gap in the calls is the watchdog's own stall: it does not count toward a frame's age,
    so frames that arrive right after it are not beaten by a stale verdict."""
    checker = _stall_checker()
    _camera_and_calls(checker, clean_frames, 1.0, 1.0)     # last frame and call at 0.98
    checker.note_awake(1.2)                                # nothing ran for 0.22 s
    waiting = checker.check_stale(1.2)
    assert waiting.level == Level.WARN and not waiting.fault and 'stall' in waiting.reason
    assert checker.stalls == 1 and waiting.values['watchdog_stalled_s'] == pytest.approx(0.2)
    checker.check(clean_frames[0], 1.17, 1.2005)           # a frame queued behind the stall
    assert checker.check_stale(1.21).level == Level.OK
    # No frame after the stall: stale once it is max_age_s old in the watchdog's running time.
    again = _stall_checker()
    _camera_and_calls(again, clean_frames, 1.0, 1.0)
    again.note_awake(1.2)
    assert again.check_stale(1.26).level == Level.WARN
    assert again.check_stale(1.28).level == Level.STALE


def test_stalls_never_excuse_more_than_their_own_length(clean_frames):
    """A camera already stale stays stale through a stall; chained stalls delay the verdict
    only by their lengths; with no allowance configured a stall is not excused at all."""
    checker = _stall_checker()
    _camera_and_calls(checker, clean_frames, 1.2, 1.0)     # the camera stops after 0.98
    assert checker.check_stale(1.18).level == Level.STALE
    checker.note_awake(1.4)                                # then the watchdog stalls
    assert checker.check_stale(1.4).level == Level.STALE
    chained = _stall_checker()
    _camera_and_calls(chained, clean_frames, 1.0, 1.0)
    for t in (1.06, 1.08, 1.30):                           # stalls of 0.08 and 0.22 s
        chained.note_awake(t)
    assert chained.check_stale(1.32).level == Level.WARN   # 0.34 s old, 0.26 s of it stalled
    assert chained.check_stale(1.34).level == Level.STALE
    off = FrameChecker(FrameCheckConfig(max_age_s=0.09))   # stall_gap_s 0: no allowance
    _camera_and_calls(off, clean_frames, 1.0, 1.0)
    off.note_awake(1.2)
    assert off.check_stale(1.2).level == Level.STALE


def test_a_clock_that_goes_back_forgets_the_stalls_of_the_old_timeline(clean_frames):
    """A looped bag under sim time: stalls counted on the old timeline must not excuse a
    camera that dies on the new one."""
    checker = _stall_checker()
    _camera_and_calls(checker, clean_frames, 100.0, 100.0, start_s=99.0)
    checker.note_awake(100.2)                              # a stall at the end of the old one
    _camera_and_calls(checker, clean_frames, 1.5, 1.0)     # the clock restarts at 0
    assert checker.check_stale(1.5).level == Level.STALE


def test_checks_are_cheap_at_640x480(clean_frames):
    frame = cv2.resize(clean_frames[0], (640, 480))
    checker = FrameChecker()
    times = []
    for k in range(60):
        t0 = time.perf_counter()
        checker.check(frame, k / 30, k / 30)
        times.append(time.perf_counter() - t0)
    # ~0.7 ms p95 measured; a loose bound that still catches an accidental full-res pass
    assert np.median(times) < 0.005
