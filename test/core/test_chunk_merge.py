import numpy as np
import pytest

from vla_edge.core.chunk_merge import (
    STRATEGIES,
    MergeConfig,
    merge_chunks,
    switch_discontinuity_ratio,
)


def ramp(start, n, slope=0.01):
    return (start + slope * np.arange(n))[:, None].repeat(2, 1)


@pytest.mark.parametrize('strategy', ['replace', 'prefix_inpaint'])
def test_replacing_strategies_take_the_new_chunk(strategy):
    old, new = ramp(0, 20), ramp(1, 30)
    assert np.array_equal(merge_chunks(old, new, MergeConfig(strategy)), new)


def test_blend_cross_fades_and_then_follows_the_new_chunk():
    old, new = np.zeros((20, 2)), np.ones((30, 2))
    out = merge_chunks(old, new, MergeConfig('blend', blend_steps=4))
    assert np.allclose(out[:4, 0], [0.2, 0.4, 0.6, 0.8])
    assert np.array_equal(out[4:], new[4:])


def test_blend_limits_the_jump_at_the_switch():
    old, new = np.zeros((20, 2)), np.ones((30, 2))
    out = merge_chunks(old, new, MergeConfig('blend', blend_steps=9))
    assert np.abs(np.diff(np.vstack([old[:1], out]), axis=0)).max() <= 0.1 + 1e-12


def test_temporal_ensemble_weights_the_older_prediction_more():
    old, new = np.zeros((10, 2)), np.ones((30, 2))
    out = merge_chunks(old, new, MergeConfig('temporal_ensemble', ensemble_m=0.5))
    w = np.exp(-0.5)
    assert np.allclose(out[:10], w / (1 + w))
    assert np.array_equal(out[10:], new[10:])


def test_empty_queue_takes_the_new_chunk():
    new = ramp(0, 10)
    for s in STRATEGIES:
        assert np.array_equal(merge_chunks(np.zeros((0, 2)), new, MergeConfig(s)), new)


@pytest.mark.parametrize('kwargs', [dict(strategy='average'), dict(blend_steps=0),
                                    dict(ensemble_m=-1)])
def test_bad_config_rejected(kwargs):
    with pytest.raises(ValueError):
        MergeConfig(**kwargs)


def test_discontinuity_ratio_is_one_for_a_smooth_trace_and_large_for_a_jump():
    smooth = ramp(0, 100)
    assert switch_discontinuity_ratio(smooth, [50]) == pytest.approx(1.0)
    jumpy = smooth.copy()
    jumpy[50:] += 0.5
    assert switch_discontinuity_ratio(jumpy, [50]) > 50


def test_offset_fade_follows_the_new_motion_and_fades_the_position_offset():
    old = np.column_stack([0.5 + 0.01 * np.arange(20), np.zeros(20), -np.ones(20)])
    new = np.column_stack([0.4 + 0.02 * np.arange(60), np.zeros(60), np.ones(60)])
    out = merge_chunks(old, new, MergeConfig('offset_fade', blend_steps=4, fade_steps=9),
                       motion_dims=2)
    offset = old[0, 0] - new[0, 0]
    assert np.allclose(out[:, 0] - new[:, 0],
                       offset * np.clip(1 - np.arange(1, 61) / 10, 0, None))
    # every step moves as the new chunk does, plus a tenth of the offset while it fades
    assert np.allclose(np.diff(out[:10, 0]), 0.02 - offset / 10)
    assert np.array_equal(out[9:, :2], new[9:, :2])
    assert np.allclose(out[:4, 2], [-0.6, -0.2, 0.2, 0.6])   # the gripper: a 4-tick blend
    assert np.array_equal(out[4:, 2], new[4:, 2])


def test_offset_fade_without_motion_dims_fades_every_dim():
    old, new = np.zeros((5, 3)), np.ones((20, 3))
    out = merge_chunks(old, new, MergeConfig('offset_fade', fade_steps=4))
    assert np.allclose(out[:5, 2], [0.2, 0.4, 0.6, 0.8, 1.0])


def test_fade_steps_out_of_range_are_refused():
    for bad in (0, 1001):
        with pytest.raises(ValueError, match='fade_steps'):
            MergeConfig('offset_fade', fade_steps=bad)
