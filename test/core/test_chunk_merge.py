import numpy as np
import pytest

from vla_edge.core.chunk_merge import MergeConfig, merge_chunks, switch_discontinuity_ratio


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
    for s in ('replace', 'temporal_ensemble', 'blend', 'prefix_inpaint'):
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
