import cv2
import numpy as np
import pytest

from vla_edge.core.watchdog import Level, MotionCheck, MotionCheckConfig, prepare_frame

FPS = 30.0


def flow_grey(frame):
    return prepare_frame(frame).flow_grey


def textured(width=320, height=240, seed=0):
    """A random texture with edges everywhere: what a wrist camera sees on a cluttered table."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8, width // 8), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.repeat(img[..., None], 3, axis=2)


def shifted(img, dx):
    return np.roll(img, dx, axis=1)


def run(check, frames, speed):
    return [check.update(flow_grey(f), k / FPS, speed) for k, f in enumerate(frames)]


def test_fixed_camera_sees_the_expert_arm_move(sim_env):
    check = MotionCheck(MotionCheckConfig(camera_mount='fixed'))
    results, k, fraction_moving = [], 0, []
    while not sim_env.success and k < 300:
        action = sim_env.expert_action()
        sim_env.step(action)
        if k % 2 == 0:   # 25 fps camera on a 50 Hz controller
            r = check.update(flow_grey(sim_env.observe().image), k / 50,
                             float(np.hypot(*action[:2])))
            results.append(r)
            if r.values.get('commanded_speed_min', 0) >= 0.3:
                fraction_moving.append(r.values['moving_fraction'])
        k += 1
    assert not any(r.fault for r in results)
    assert fraction_moving and min(fraction_moving) > 0.005   # it is measured, not skipped


def test_fixed_camera_commanded_to_move_but_nothing_moves(sim_env):
    """The arm is commanded at 0.8 but stuck (or the camera shows an old scene): only noise
    changes in the image."""
    check = MotionCheck(MotionCheckConfig(camera_mount='fixed', window_s=1.0))
    results = run(check, [sim_env.observe().image for _ in range(45)], 0.8)
    first_fault = next(k for k, r in enumerate(results) if r.fault)
    assert 33 <= first_fault <= 36       # 0.1 s to get a flow pair, then the 1 s window
    assert 'no motion' in results[first_fault].reason
    assert results[-1].values['moving_fraction'] < 0.005


def test_a_stamp_far_in_the_future_does_not_blind_the_check(sim_env):
    """After one frame stamped 600 s ahead (or a clock that went back), frames on the clock
    are a new timeline: the arm commanded to move with nothing moving is still caught."""
    check = MotionCheck(MotionCheckConfig(camera_mount='fixed', window_s=1.0))
    image = sim_env.observe().image
    check.update(flow_grey(image), 600.0, 0.8)
    results = run(check, [image for _ in range(45)], 0.8)
    first_fault = next(k for k, r in enumerate(results) if r.fault)
    assert 33 <= first_fault <= 36 and 'no motion' in results[first_fault].reason


def test_fixed_camera_still_while_commanded_still(sim_env):
    check = MotionCheck(MotionCheckConfig(camera_mount='fixed'))
    results = run(check, [sim_env.observe().image for _ in range(60)], 0.0)
    assert not any(r.fault for r in results)
    assert results[-1].reason == 'ok'


def test_fixed_camera_knocked_whole_view_moves_while_still():
    check = MotionCheck(MotionCheckConfig(camera_mount='fixed', window_s=0.5))
    img = textured()
    results = run(check, [shifted(img, 2 * k) for k in range(40)], 0.0)
    assert results[-1].fault and 'while commanded still' in results[-1].reason
    assert results[-1].values['moving_fraction'] > 0.3


def test_wrist_camera_ego_motion_is_consistent_with_commands():
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist', window_s=0.5))
    img = textured()
    moving = run(check, [shifted(img, 2 * k) for k in range(40)], 0.8)
    assert not any(r.fault for r in moving)
    assert moving[-1].values['ego_speed'] > 0.1


def test_wrist_camera_moving_while_commanded_still():
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist', window_s=0.5))
    img = textured()
    results = run(check, [shifted(img, 2 * k) for k in range(40)], 0.0)
    assert results[-1].fault and 'wrist camera' in results[-1].reason


def test_wrist_camera_commanded_to_move_but_view_is_static():
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist', window_s=0.5))
    img = textured()
    results = run(check, [img] * 40, 0.8)
    assert results[-1].fault and 'no motion' in results[-1].reason


def test_wrist_camera_on_a_blank_wall_is_not_applicable():
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist', window_s=0.5))
    blank = np.full((240, 320, 3), 120, np.uint8)
    results = run(check, [blank] * 40, 0.8)
    assert not any(r.fault for r in results)
    assert results[-1].reason.startswith('not applicable')


def test_mount_off_is_not_applicable():
    check = MotionCheck(MotionCheckConfig(camera_mount='off'))
    results = run(check, [textured()] * 40, 0.8)
    assert all(r.level == Level.OK and 'not applicable' in r.reason for r in results)


def test_moving_needs_the_command_throughout_the_flow_interval():
    """A command that dips below moving_command_min between two frames (a stop) must not count
    as 'commanded to move' for that interval."""
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist', window_s=0.3))
    img = textured()
    results = [check.update(flow_grey(img), k / FPS, 0.0, 0.8) for k in range(30)]
    assert not any(r.fault for r in results)


def test_a_frame_gap_restarts_the_window():
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist', window_s=0.5,
                                          max_frame_gap_s=0.2))
    img = textured()
    for k in range(12):              # 0.4 s of contradiction, not yet a fault
        r = check.update(flow_grey(img), k / FPS, 0.8)
    assert not r.fault and r.values['no_motion_for_s'] > 0.2
    r = check.update(flow_grey(img), 2.0, 0.8)     # 1.6 s later: a new start
    assert r.reason.startswith('not applicable')
    for k in range(1, 12):
        r = check.update(flow_grey(img), 2.0 + k / FPS, 0.8)
    assert not r.fault


@pytest.mark.parametrize('fps', [15.0, 60.0])
def test_speeds_do_not_depend_on_the_frame_rate(fps):
    img = textured()
    check = MotionCheck(MotionCheckConfig(camera_mount='wrist'))
    px_per_s = 60
    for k in range(int(fps)):
        r = check.update(flow_grey(shifted(img, int(round(k * px_per_s / fps)))), k / fps, 0.8)
    assert r.values['ego_speed'] == pytest.approx(px_per_s / 320, rel=0.25)
