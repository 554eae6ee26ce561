"""The vision thread's key-frame gate: skip encoding a frame that shows the scene of the last one
encoded, on real sim frames (with their sensor noise) and on synthetic ones."""
import numpy as np
import pytest

from vla_edge.core.key_frame import KeyFrameGate
from vla_edge.sim.env import TeaTableEnv


def _grey(level: float, side: int = 128) -> np.ndarray:
    return np.full((side, side, 3), level, np.uint8)


def _feed(gate: KeyFrameGate, frames, stamps) -> list[bool]:
    """Encode decisions, anchoring every frame the gate lets through (as vla_node does)."""
    decisions = []
    for frame, stamp in zip(frames, stamps):
        check = gate.assess(frame, stamp)
        if check.encode:
            gate.anchor(check, stamp)
        decisions.append(check.encode)
    return decisions


@pytest.fixture(scope='module')
def sim_frames():
    """A still scene rendered 6 times (fresh sensor noise each), then after the robot moved."""
    env = TeaTableEnv()
    env.reset(1_000_015)   # the strongest sensor noise of the first 20 held-out episodes
    assert env.episode.noise_std > 4.5   # (the sim draws 1-5 grey levels per episode)
    still = [env.observe().image for _ in range(6)]
    for _ in range(3):   # 60 ms at full speed: ~3 px at 128 px
        env.step(np.array([1.0, 0.0, 0.0]))
    return still, env.observe().image


def test_sensor_noise_alone_is_not_a_new_scene_but_motion_is(sim_frames):
    still, moved = sim_frames
    gate = KeyFrameGate(12.0, 0.3)
    assert _feed(gate, still, [0.03 * k for k in range(1, 7)]) == [True] + [False] * 5
    check = gate.assess(moved, 0.21)
    assert check.encode and check.change >= 12.0


def test_change_adds_up_against_the_anchor_not_the_previous_frame():
    # +5 levels per frame: never 12 from one frame to the next, 15 from the anchor at frame 3
    gate = KeyFrameGate(12.0, 0.3)
    frames = [_grey(100 + 5 * k) for k in range(5)]
    assert _feed(gate, frames, [0.03 * k for k in range(1, 6)]) == [True, False, False, True,
                                                                     False]


def test_an_unchanged_scene_is_encoded_again_after_max_interval():
    gate = KeyFrameGate(12.0, 0.3)
    stamps = [10.0 + 0.125 * k for k in range(8)]   # exact in binary: no rounding at 0.3
    assert _feed(gate, [_grey(100)] * 8, stamps) == [True, False, False, True, False, False,
                                                     True, False]


@pytest.mark.parametrize('stamps', [[0.0] * 4, [5.0, 4.9, 4.8, 4.7]],
                         ids=['unstamped', 'going_back'])
def test_stamps_that_do_not_move_forward_encode_every_frame(stamps):
    assert _feed(KeyFrameGate(12.0, 0.3), [_grey(100)] * 4, stamps) == [True] * 4


@pytest.mark.parametrize('step, encode', [(11, False), (12, True)])
def test_the_threshold_itself_counts_as_a_change(step, encode):
    gate = KeyFrameGate(12.0, 0.3)
    assert _feed(gate, [_grey(100), _grey(100 + step)], [1.0, 1.03]) == [True, encode]


def test_a_change_of_colour_at_equal_brightness_counts():
    # The sim's red block repainted purple in place: 7 grey levels, 130 in the blue channel.
    table = np.full((128, 128, 3), (196, 176, 146), np.uint8)
    red, purple = table.copy(), table.copy()
    red[60:69, 60:69] = (205, 40, 40)
    purple[60:69, 60:69] = (140, 60, 170)
    gate = KeyFrameGate(12.0, 0.3)
    assert _feed(gate, [red, purple], [1.0, 1.03]) == [True, True]


def test_a_new_frame_size_is_a_new_scene():
    gate = KeyFrameGate(12.0, 0.3)
    assert _feed(gate, [_grey(100), _grey(100, side=64)], [1.0, 1.03]) == [True, True]


@pytest.mark.parametrize('min_change, max_interval_s', [(0.0, 0.5), (8.0, 0.0)])
def test_zero_turns_the_gate_off(min_change, max_interval_s):
    gate = KeyFrameGate(min_change, max_interval_s)
    assert not gate.enabled
    assert _feed(gate, [_grey(100)] * 3, [1.0, 1.03, 1.06]) == [True] * 3


def test_a_frame_is_compared_only_with_one_that_was_anchored():
    gate = KeyFrameGate(12.0, 0.3)
    assert gate.assess(_grey(100), 1.0).encode
    assert gate.assess(_grey(100), 1.03).encode   # the first was never anchored (not encoded)
    gate.anchor(gate.assess(_grey(100), 1.06), 1.06)
    gate.reset()
    assert gate.assess(_grey(100), 1.09).encode


@pytest.mark.parametrize('frame', [np.zeros((0, 0, 3), np.uint8), np.zeros((8, 8), np.uint8),
                                   np.zeros((8, 8, 3), np.float32)],
                         ids=['empty', 'two_dims', 'float'])
def test_frames_it_cannot_judge_go_to_the_encoder(frame):
    gate = KeyFrameGate(12.0, 0.3)
    gate.anchor(gate.assess(_grey(0, 8), 1.0), 1.0)
    assert gate.assess(frame, 1.03).encode


@pytest.mark.parametrize('kwargs, message', [
    ({'min_change': -1.0, 'max_interval_s': 0.5}, 'min_change'),
    ({'min_change': 300.0, 'max_interval_s': 0.5}, 'min_change'),
    ({'min_change': 8.0, 'max_interval_s': -0.1}, 'max_interval_s'),
    ({'min_change': 8.0, 'max_interval_s': float('nan')}, 'max_interval_s'),
    ({'min_change': 8.0, 'max_interval_s': 0.5, 'thumb_side': 2}, 'thumb_side'),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KeyFrameGate(**kwargs)
