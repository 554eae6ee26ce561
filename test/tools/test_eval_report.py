"""Async vs sync: by each mode's mean over its own successes, and paired over shared seeds."""
import pytest

from vla_edge.sim.closed_loop import EvalConfig, ExpertPolicy, evaluate
from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.world import SimConfig
from vla_edge.tools.eval_report import (
    compare_modes,
    compare_reports,
    describe_comparison,
    describe_switches,
)


def run(rows):
    done = [t for _, ok, t in rows if ok]
    return {'per_episode': [{'seed': s, 'success': ok, 'time_s': t} for s, ok, t in rows],
            'mean_time_to_completion_s': sum(done) / len(done) if done else None}


def test_a_seed_only_one_mode_completes_moves_the_mean_not_the_paired_figure():
    a = run([(1, True, 2.0), (2, True, 2.0), (3, True, 8.0)])    # async also solves a hard seed
    s = run([(1, True, 3.0), (2, True, 3.0), (3, False, 10.0)])
    c = compare_modes(a, s)
    assert c['faster_by_mean'] == pytest.approx(1 - 4.0 / 3.0)  # slower "by mean"
    assert c['paired'] == {'seeds': 2, 'async_mean_s': 2.0, 'sync_mean_s': 3.0,
                           'faster': pytest.approx(1 / 3),
                           'interval_95': pytest.approx([1 / 3, 1 / 3])}   # the same ratio
    assert describe_comparison(c) == ('async finished -33.3% sooner than sync by mean time; '
                                      '33.3% on the 2 seeds both completed (95% bootstrap '
                                      'interval over seeds 33.3% to 33.3%)')


def test_the_interval_shows_how_much_one_seed_can_move_ten():
    """Nine seeds 20% sooner and one where async loops at the grasp: the point figure says
    ~-7%, the interval says another ten episodes could give anything from well below to 20%."""
    rows_a = [(i, True, 2.0) for i in range(9)] + [(9, True, 9.0)]
    rows_s = [(i, True, 2.5) for i in range(9)] + [(9, True, 3.0)]
    c = compare_modes(run(rows_a), run(rows_s))
    lo, hi = c['paired']['interval_95']
    assert lo < c['paired']['faster'] < hi
    assert hi == pytest.approx(0.2) and lo < -0.3
    assert compare_modes(run(rows_a), run(rows_s)) == c     # fixed seed: reproducible


def test_no_successes_give_no_figure_rather_than_a_wrong_one():
    a = run([(1, False, 10.0)])
    s = run([(1, True, 3.0)])
    c = compare_modes(a, s)
    assert c['faster_by_mean'] is None and c['paired']['seeds'] == 0
    assert c['paired']['faster'] is None
    assert 'n/a' in describe_comparison(c)


def rows_with(rows):
    """Runs whose episodes carry the time waited for chunks and the retry count."""
    done = [t for _, ok, t, _, _ in rows if ok]
    return {'per_episode': [{'seed': s, 'success': ok, 'time_s': t, 'waited_s': w, 'retries': r}
                            for s, ok, t, w, r in rows],
            'mean_time_to_completion_s': sum(done) / len(done)}


def test_the_paired_figure_splits_into_waiting_and_moving():
    """Sync waits 0.6 s more per episode; on seed 2 it also moves 1 s longer (a slow retry):
    the lead is 0.6 + 0.6 + 1.0 over 3 + 4 s, the waiting part 1.2 s of it."""
    a = rows_with([(1, True, 2.4, 0.3, 0), (2, True, 2.4, 0.3, 1)])
    s = rows_with([(1, True, 3.0, 0.9, 0), (2, True, 4.0, 0.9, 1)])
    p = compare_modes(a, s)['paired']
    assert p['faster'] == pytest.approx(1 - 4.8 / 7.0)
    assert p['waiting'] == pytest.approx(1.2 / 7.0)
    assert p['motion'] == pytest.approx(1.0 / 7.0)


def test_seeds_either_mode_retried_are_left_out_of_the_clean_figure():
    a = rows_with([(1, True, 2.4, 0.3, 0), (2, True, 2.4, 0.3, 0), (3, True, 5.0, 0.3, 2),
                   (4, False, 10.0, 0.3, 3)])
    s = rows_with([(1, True, 3.0, 0.9, 0), (2, True, 4.0, 0.9, 1), (3, True, 3.0, 0.9, 0),
                   (4, True, 3.0, 0.9, 0)])
    c = compare_modes(a, s)
    assert c['without_retries'] == {'seeds': 1, 'faster': pytest.approx(1 - 2.4 / 3.0)}
    assert c['paired']['seeds'] == 3
    text = describe_comparison(c)
    assert 'points less time waiting for chunks' in text
    assert '20.0% on the 1 seeds neither mode retried' in text


def test_rows_without_the_extra_fields_give_the_plain_comparison():
    c = compare_modes(run([(1, True, 2.0)]), run([(1, True, 3.0)]))
    assert 'without_retries' not in c and 'waiting' not in c['paired']


def test_virtual_clock_reports_split_by_the_ticks_each_episode_waited():
    """At 0.3 s sync waits for every chunk, async only for its first: the waiting part is sync's
    extra ticks over its time. The expert never retries and continues its own chunks exactly, so
    its whole lead is waiting: async merges cost it no motion."""
    env = TeaTableEnv(SimConfig(recovery_fraction=0.0))
    runs = {mode: evaluate(ExpertPolicy(env), EvalConfig(mode=mode, episodes=3, latency_s=0.3),
                           env, progress=False) for mode in ('async', 'sync')}
    c = compare_reports(runs['async'], runs['sync'])
    rate = runs['sync'].control_rate_hz
    waits = {m: [(e.startup_wait_ticks + e.stalled_ticks) / rate for e in r.per_episode]
             for m, r in runs.items()}
    sync_s = sum(e.time_s for e in runs['sync'].per_episode)
    assert c['paired']['seeds'] == 3 and c['without_retries']['seeds'] == 3
    assert c['paired']['waiting'] == pytest.approx(
        (sum(waits['sync']) - sum(waits['async'])) / sync_s)
    assert c['paired']['waiting'] > 0.1
    assert c['paired']['waiting'] + c['paired']['motion'] == pytest.approx(c['paired']['faster'])
    assert c['paired']['motion'] == pytest.approx(0.0, abs=1e-9)


def test_a_virtual_clock_run_without_successes_gives_no_figure():
    env = TeaTableEnv(SimConfig(recovery_fraction=0.0, time_limit_s=0.1))
    runs = [evaluate(ExpertPolicy(env), EvalConfig(mode=m, episodes=1, latency_s=0.3), env,
                     progress=False) for m in ('async', 'sync')]
    c = compare_reports(*runs)
    assert c['faster_by_mean'] is None and c['paired']['seeds'] == 0
    assert 'nan' not in describe_comparison(c)


def test_a_run_without_switches_says_so_instead_of_printing_nans():
    assert describe_switches(float('nan'), float('nan'), float('nan')) == \
        'switch max/median n/a (no chunk switch)'
    assert describe_switches(1.42, 1.0, 1.57) == \
        'switch max/median 1.42 (1.57 without retried episodes, p95/p95 1.00)'
