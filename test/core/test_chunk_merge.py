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


def _steps(previous, out):
    return np.linalg.norm(np.diff(np.vstack([previous[None, :2], out[:, :2]]), axis=0), axis=1)


def test_a_speed_limited_fade_never_steps_past_the_top_speed():
    """Random chunks, each at most top speed per tick, with random offsets at the switch: every
    merged step, the first from the action executed last included, stays within top speed."""
    rng = np.random.default_rng(0)
    top = 0.012
    cfg = MergeConfig('offset_fade', fade_steps=40, max_step=top)
    for _ in range(200):
        def chunk(start, n):
            v = rng.uniform(-1, 1, (n, 2))
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1.0)
            return np.column_stack([start + np.cumsum(v * top, axis=0), np.ones(n)])
        old = chunk(rng.uniform(0, 1, 2), 21)
        previous, queued = old[0], old[1:]
        new = chunk(queued[0, :2] + rng.normal(0, 0.05, 2), 50)
        out = merge_chunks(queued, new, cfg, motion_dims=2, previous=previous)
        assert _steps(previous, out).max() <= top + 1e-12
    # the plain fade does exceed it where the new chunk is ahead: the limit is doing the work
    moving = np.column_stack([0.1 + top * np.arange(1, 51), np.zeros(50), np.ones(50)])
    behind = np.column_stack([0.0 + top * np.arange(21), np.zeros(21), np.ones(21)])
    plain = merge_chunks(behind[1:], moving, MergeConfig('offset_fade', fade_steps=40), 2)
    assert _steps(behind[0], plain).max() > top * 1.05


def test_a_speed_limited_fade_waits_for_slack_to_take_up_an_offset_along_the_motion():
    """New chunk ahead of the old one, moving at top speed, then stopping: while it moves the
    offset is held (a take-up would speed the robot up); once it stops it is taken up."""
    top = 0.01
    moving = 0.3 + top * np.arange(1, 21)
    new = np.column_stack([np.r_[moving, np.full(40, moving[-1])], np.zeros(60)])
    old = np.column_stack([0.2 + top * np.arange(21), np.zeros(21)])   # 0.1 behind
    out = merge_chunks(old[1:], new, MergeConfig('offset_fade', fade_steps=9, max_step=top),
                       motion_dims=2, previous=old[0])
    offset = old[1, 0] - new[0, 0]
    assert np.allclose(out[:20, 0] - new[:20, 0], offset)   # held while at top speed
    assert np.allclose(out[-1, 0], new[-1, 0])              # taken up after the stop
    assert _steps(old[0], out).max() <= top + 1e-12


def test_a_speed_limited_fade_is_the_plain_fade_where_it_only_slows_the_robot():
    """New chunk behind the old one: taking the offset up shortens every step, so it runs on
    the plain schedule."""
    old = np.column_stack([0.5 + 0.01 * np.arange(21), np.zeros(21)])
    new = np.column_stack([0.4 + 0.01 * np.arange(1, 61), np.zeros(60)])
    limited = merge_chunks(old[1:], new, MergeConfig('offset_fade', fade_steps=9, max_step=0.01),
                           motion_dims=2, previous=old[0])
    assert np.allclose(limited, merge_chunks(old[1:], new, MergeConfig('offset_fade',
                                                                       fade_steps=9), 2))


@pytest.mark.parametrize('bad', [-0.1, float('nan'), float('inf')])
def test_a_bad_max_step_is_refused(bad):
    with pytest.raises(ValueError, match='max_step'):
        MergeConfig('offset_fade', max_step=bad)


@pytest.mark.parametrize('strategy', ['blend', 'temporal_ensemble', 'offset_fade'])
def test_a_non_finite_queued_action_is_not_merged_into_the_new_chunk(strategy):
    """A NaN that got into the queue behind the executor's checks: the new chunk replaces it
    (offset_fade took its offset from the first queued action, so the NaN ran on forever)."""
    old = np.column_stack([0.3 + 0.01 * np.arange(20), np.full(20, 0.5), np.ones(20)])
    old[:10, :2] = np.nan
    new = np.column_stack([0.31 + 0.01 * np.arange(50), np.full(50, 0.5), np.ones(50)])
    cfg = MergeConfig(strategy, fade_steps=40, max_step=0.012)
    out = merge_chunks(old, new, cfg, motion_dims=2, previous=np.array([np.nan, 0.5, 1.0]))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:10], new[:10])
