"""ChunkScheduler on a virtual clock: a fake policy answers each request after a set latency."""
import math

import numpy as np
import pytest

from vla_edge.core.chunk_merge import MergeConfig
from vla_edge.core.chunk_scheduler import ChunkScheduler, SchedulerConfig

H = 50


def drive(cfg, latency_ticks, ticks=600, answer=True, observed=False):
    """Run the scheduler; actions encode (observation tick + index), so drops are visible.
    With `observed`, also return the observation tick of the chunk each tick executed from."""
    s = ChunkScheduler(cfg)
    pending = None
    executed, views = [], []
    for tick in range(ticks):
        if pending is not None and pending[0] <= tick:   # latency: request -> this tick
            s.chunk_arrived(pending[1], pending[2], tick, latency_s=(tick - pending[2]) * s.dt_s)
            pending = None
        if pending is None and s.wants_chunk(tick):
            s.request_sent(tick)
            chunk = np.stack([np.full(3, tick + k, float) for k in range(H)])
            if answer:
                pending = (tick + latency_ticks, chunk, tick)
        a = s.next_action(tick)
        executed.append(None if a is None else a[0])
        views.append(None if a is None else s._observed_tick)
    return (s, executed, views) if observed else (s, executed)


@pytest.mark.parametrize('latency_ticks', [1, 10, 15, 24, 25])
def test_async_never_stalls_when_latency_is_at_most_half_the_chunk(latency_ticks):
    # One inference at a time: a chunk is usable only from its arrival (H - L fresh actions)
    # and the next one takes L to compute, so stall-free needs L <= H / 2.
    s, _ = drive(SchedulerConfig(mode='async', merge=MergeConfig('replace')), latency_ticks)
    assert s.stats.stalled_ticks == 0
    assert s.stats.startup_wait_ticks == latency_ticks


def test_async_executes_each_action_at_its_own_tick():
    _, executed = drive(SchedulerConfig(mode='async', merge=MergeConfig('replace')), 12)
    # Every chunk encodes observation tick + index: executing at the right time means a == t.
    # (The first chunk was waited for and plays from its start; from the second one on, every
    # action runs at the tick it was planned for.)
    assert all(a == t for t, a in enumerate(executed) if t >= 70)
    assert sum(a is None for a in executed) == 12


def test_async_stalls_when_latency_exceeds_half_the_chunk():
    s, _ = drive(SchedulerConfig(mode='async', merge=MergeConfig('replace')), 35)
    assert s.stats.stalled_ticks > 0


def test_sync_stalls_for_the_latency_of_every_chunk():
    lat = 10
    s, _ = drive(SchedulerConfig(mode='sync', merge=MergeConfig('replace')), lat, ticks=600)
    assert s.stats.stalled_ticks == (s.stats.chunks_received - 1) * lat
    assert s.stats.dropped_actions == 0


def test_stale_actions_are_dropped_by_exactly_the_ticks_moved():
    lat = 7
    s, _ = drive(SchedulerConfig(mode='async', merge=MergeConfig('replace')), lat, ticks=400)
    # the first chunk was waited for (nothing moved), every later one arrives `lat` ticks late
    assert s.stats.dropped_actions == (s.stats.chunks_received - 1) * lat


def test_a_chunk_whose_actions_are_all_past_is_counted():
    # latency 60 ticks > H: after the first chunk, each lands once the robot moved through all of
    # it (holding ticks do not count, so the ones that still overlap are partly fresh)
    s, _ = drive(SchedulerConfig(mode='async', merge=MergeConfig('replace')), 60, ticks=600)
    assert s.stats.chunks_all_past >= 1
    fresh, _ = drive(SchedulerConfig(mode='async', merge=MergeConfig('replace')), 10, ticks=600)
    assert fresh.stats.chunks_all_past == 0


def test_async_trigger_uses_the_latency_percentile():
    s = ChunkScheduler(SchedulerConfig(mode='async', trigger_margin_ticks=2, max_action_age_s=0.0,
                                       merge=MergeConfig('replace')))
    for _ in range(20):
        s.latency.add(0.2)            # 10 ticks at 50 Hz
    assert s.lead_ticks() == 12
    s.chunk_arrived(np.zeros((H, 3)), 0, 0, latency_s=0.2)
    assert not s.wants_chunk(H - 13) and s.wants_chunk(H - 12)


def test_age_bound_requests_so_the_next_chunk_lands_when_the_view_reaches_the_age():
    # 0.4 s = 20 ticks; latency 0.1 s = 5 ticks: ask at observation + 15, not at the deadline.
    s = ChunkScheduler(SchedulerConfig(mode='async', trigger_margin_ticks=0, max_action_age_s=0.4,
                                       merge=MergeConfig('replace')))
    for _ in range(20):
        s.latency.add(0.1)
    s.chunk_arrived(np.zeros((H, 3)), 100, 103, latency_s=0.1)
    assert s.lead_ticks() == 5
    assert not s.wants_chunk(114) and s.wants_chunk(115)


def test_age_bound_under_slow_inference_replans_continuously_without_stalls():
    # latency 15 ticks (0.3 s) >= the 0.2 s age bound: a new request goes out on every arrival
    s, executed, observed = drive(SchedulerConfig(mode='async', max_action_age_s=0.2,
                                                  merge=MergeConfig('replace')), 15, ticks=600,
                                  observed=True)
    assert s.stats.stalled_ticks == 0
    assert s.stats.chunks_received == 600 // 15 - 1 + (600 % 15 > 0)
    # every action ran on a view at most 2 x latency old (the view is 15 ticks old on arrival
    # and the next chunk lands 15 ticks later)
    assert s.max_age_ticks() == 10
    ages = [t - obs for t, obs in enumerate(observed) if obs is not None and t >= 30]
    assert max(ages) == 29 and min(ages) == 15


def test_age_bound_off_waits_for_the_deadline():
    on, _ = drive(SchedulerConfig(mode='async', max_action_age_s=0.4,
                                  merge=MergeConfig('replace')), 5, ticks=600)
    off, _ = drive(SchedulerConfig(mode='async', max_action_age_s=0.0,
                                   merge=MergeConfig('replace')), 5, ticks=600)
    # on (20 ticks, latency 5): ask at age 15, land at 20 as the new view is 5 old, so a chunk
    # every 15 ticks after the first (tick 5); off: every H - lead = 40 ticks
    assert on.stats.chunks_received == (595 - 5) // 15 + 1
    assert off.stats.chunks_received < 600 // 35
    assert on.stats.stalled_ticks == off.stats.stalled_ticks == 0


def test_a_late_reply_to_a_timed_out_request_leaves_the_resent_one_pending():
    s = ChunkScheduler(SchedulerConfig(mode='async', request_timeout_s=0.5))
    s.chunk_arrived(np.zeros((H, 3)), 0, 0, latency_s=0.1)
    for tick in range(12):
        s.next_action(tick)
    s.request_sent(10)
    assert s.wants_chunk(35)                  # 0.5 s without a reply: ask again
    s.request_sent(35)
    samples = s.latency.count
    s.chunk_arrived(np.zeros((H, 3)), 10, 40, answers_pending=False)   # the first one, late
    assert s.pending_since == 35 and not s.wants_chunk(41)   # no third request beside it
    assert s.latency.count == samples
    s.chunk_arrived(np.zeros((H, 3)), 35, 45, latency_s=0.2)            # the re-sent one
    assert s.pending_since is None and s.latency.count == samples + 1


def test_a_reply_that_cannot_be_matched_gives_no_latency_sample():
    s = ChunkScheduler(SchedulerConfig(mode='async'))
    s.request_sent(0)
    s.chunk_arrived(np.zeros((H, 3)), 0, 7)   # latency unknown
    assert s.pending_since is None and s.latency.count == 0


def test_lost_request_is_retried_after_the_timeout():
    cfg = SchedulerConfig(mode='sync', request_timeout_s=0.5)
    s, _ = drive(cfg, 5, ticks=100, answer=False)
    assert s.stats.timeouts == math.floor((100 - 1) / 25)


def test_prefix_is_offered_only_for_prefix_inpaint():
    for strategy, expect in (('prefix_inpaint', True), ('blend', False)):
        s = ChunkScheduler(SchedulerConfig(merge=MergeConfig(strategy)))
        s.chunk_arrived(np.ones((H, 3)), 0, 0)
        assert (s.committed_prefix(0) is not None) == expect


def test_bad_chunk_rejected():
    with pytest.raises(ValueError):
        ChunkScheduler(SchedulerConfig()).chunk_arrived(np.zeros((0, 3)), 0, 0)


def test_any_positive_age_bound_keeps_the_rule_on():
    assert ChunkScheduler(SchedulerConfig(max_action_age_s=0.01)).max_age_ticks() == 1
    assert ChunkScheduler(SchedulerConfig(max_action_age_s=0.3)).max_age_ticks() == 15


@pytest.mark.parametrize('kwargs', [dict(mode='eager'), dict(control_rate_hz=0.1),
                                    dict(trigger_margin_ticks=-1), dict(request_timeout_s=0),
                                    dict(max_action_age_s=-0.1), dict(max_action_age_s=61.0),
                                    dict(smoothness_window_s=0.5),
                                    dict(smoothness_window_s=601.0)])
def test_bad_config_rejected(kwargs):
    with pytest.raises(ValueError):
        SchedulerConfig(**kwargs)


def test_smoothness_counts_only_the_recent_window():
    # 20 s at 50 Hz over a 4 s window: the steps kept are the last 200 ticks' (one per tick that
    # executed after another), whatever ran before.
    cfg = SchedulerConfig(mode='async', merge=MergeConfig('replace'), smoothness_window_s=4.0)
    s, executed = drive(cfg, 10, ticks=1000)
    steps = len(s.stats.switch_steps) + len(s.stats.inside_steps)
    assert s.window_ticks() == 200 and steps == 200
    assert len(s.stats.switch_steps) > 0


def test_a_rough_switch_leaves_the_ratio_once_it_is_older_than_the_window():
    s = ChunkScheduler(SchedulerConfig(mode='async', merge=MergeConfig('replace'),
                                       smoothness_window_s=1.0))   # 50 ticks at 50 Hz
    x = np.array([[1.0, 0.0, 0.0]])   # all motion along the first dimension
    ramp = np.arange(H, dtype=float)[:, None] * 0.01 * x   # 0.01 per tick
    s.chunk_arrived(ramp, 0, 0)
    for tick in range(10):
        s.next_action(tick)
    s.chunk_arrived(ramp + 5.0 * x, 10, 10)   # at tick 10: 0.09 -> 5.00, a jump of 4.91
    for tick in range(10, 40):
        s.next_action(tick)
    assert s.stats.switch_steps == pytest.approx([4.91])
    assert s.stats.switch_discontinuity_ratio == pytest.approx(491.0)
    s.chunk_arrived(ramp + 5.31 * x, 40, 40)   # at tick 40: 5.29 -> 5.31, as smooth as inside
    for tick in range(40, 90):
        s.next_action(tick)
    # Steps at ticks 40..89 are kept: the jump at tick 10 has left the window.
    assert len(s.stats.inside_steps) + len(s.stats.switch_steps) == 50
    assert s.stats.switch_steps == pytest.approx([0.02])
    assert s.stats.switch_discontinuity_ratio == pytest.approx(2.0)


def test_moved_ticks_are_counted_from_the_newest_back_exactly():
    # Counted against a full scan of what ran, over gaps (ticks a late timer skipped) and holds.
    rng = np.random.default_rng(3)
    s = ChunkScheduler(SchedulerConfig(mode='async', merge=MergeConfig('replace')))
    s.chunk_arrived(np.zeros((H, 3)), 0, 0)
    ran, tick = [], 0
    for _ in range(5000):
        tick += int(rng.integers(1, 3))
        action = s.next_action(tick)
        ran.append((tick, action is not None))
        if action is None or rng.random() < 0.05:
            s.chunk_arrived(np.zeros((H, 3)), tick, tick + 1)
    kept = ran[-4096:]
    for since, until in ((tick - 60, tick), (tick - 500, tick - 100), (0, tick + 1)):
        expect = sum(1 for t, moved in kept if since <= t < until and moved)
        assert s.moved_ticks_since(since, until) == expect


def test_the_step_window_is_capped_in_ticks():
    # 600 s at 1 kHz would be 600k steps, a ~12 ms median per diagnostics publish.
    s = ChunkScheduler(SchedulerConfig(control_rate_hz=1000.0, smoothness_window_s=600.0))
    assert s.window_ticks() == 30_000 and s.stats.steps.size == 30_000
    assert ChunkScheduler(SchedulerConfig(control_rate_hz=100.0)).window_ticks() == 12_000
