import pytest

from vla_edge.core.latency import LatencyTracker


def test_cold_start_outlier_is_discarded():
    t = LatencyTracker(window=20, percentile=95, discard_first=1)
    t.add(2.0)                       # cold start
    for _ in range(20):
        t.add(0.010)
    assert t.estimate_s() == pytest.approx(0.010)


def test_high_percentile_tracks_the_tail_not_the_mean():
    t = LatencyTracker(window=100, percentile=95, discard_first=0)
    for i in range(100):
        t.add(0.050 if i % 10 == 0 else 0.010)   # 10% slow calls
    assert t.estimate_s() == pytest.approx(0.050)


def test_window_forgets_old_samples():
    t = LatencyTracker(window=10, discard_first=0)
    for _ in range(10):
        t.add(1.0)
    for _ in range(10):
        t.add(0.1)
    assert t.estimate_s() == pytest.approx(0.1)


def test_the_estimate_follows_every_new_sample():
    # Kept between samples (the executor asks every tick), recomputed after each one.
    t = LatencyTracker(window=3, percentile=100, discard_first=0)
    seen = []
    for value in (0.1, 0.3, 0.2, 0.05, 0.04, 0.01):
        t.add(value)
        seen.append(t.estimate_s())
        assert t.estimate_s() == seen[-1]
    assert seen == pytest.approx([0.1, 0.3, 0.3, 0.3, 0.2, 0.05])


def test_default_before_samples():
    assert LatencyTracker().estimate_s(default=0.3) == 0.3


def test_cold_start_stands_in_until_a_real_sample_arrives():
    t = LatencyTracker(discard_first=1)
    t.add(0.5)
    assert t.estimate_s() == 0.5     # conservative, better early than starving
    t.add(0.01)
    assert t.estimate_s() == pytest.approx(0.01)


@pytest.mark.parametrize('kwargs', [dict(window=0), dict(percentile=0), dict(percentile=101),
                                    dict(discard_first=-1)])
def test_bad_settings_rejected(kwargs):
    with pytest.raises(ValueError):
        LatencyTracker(**kwargs)


@pytest.mark.parametrize('value', [float('nan'), -1.0, float('inf')])
def test_bad_samples_rejected(value):
    with pytest.raises(ValueError):
        LatencyTracker().add(value)
