"""Human-readable tables for evaluation reports (the JSON carries the same numbers for machines)."""
from __future__ import annotations

import math

import numpy as np

from vla_edge.sim.closed_loop import EvalReport


def describe(report: EvalReport, label: str | None = None) -> str:
    label = label or report.mode
    lat = ', '.join(f'{stage} p50 {v["p50"]:.1f} / p95 {v["p95"]:.1f} ms'
                    for stage, v in report.latency_ms.items())
    switches = describe_switches(report.switch_discontinuity_ratio, report.switch_p95_ratio,
                                 report.switch_discontinuity_ratio_without_retries)
    return (f'{label:<28} success {report.success_rate * 100:5.1f}%  '
            f'time-to-completion {report.mean_time_to_completion_s:5.2f} s  '
            f'stalled ticks {report.stalled_ticks:5d}  '
            f'{switches}  '
            f'(start-up wait {report.startup_wait_ticks}, dropped past actions '
            f'{report.dropped_actions}, episodes with retries {report.episodes_with_retries})'
            f'\n{"":<28} latency [{report.latency_source}]: {lat}')


def describe_switches(ratio: float, p95_ratio: float, without_retries: float) -> str:
    """The switch ratios of one run; a run with no switch (sync plays chunks out, then waits)
    says so rather than printing NaNs."""
    if math.isnan(ratio):
        return 'switch max/median n/a (no chunk switch)'
    return (f'switch max/median {ratio:.2f} ({without_retries:.2f} without retried episodes, '
            f'p95/p95 {p95_ratio:.2f})')


def summary_dict(report: EvalReport) -> dict:
    """The report without per-episode rows (those stay in the full JSON)."""
    d = report.to_dict()
    d.pop('per_episode')
    return d


def compare_reports(async_report: EvalReport, sync_report: EvalReport) -> dict:
    """`compare_modes` for two virtual-clock evaluations."""
    def rows(report: EvalReport) -> dict:
        mean = report.mean_time_to_completion_s   # NaN when nothing succeeded
        return {'mean_time_to_completion_s': None if math.isnan(mean) else mean,
                'per_episode': [
                    {'seed': e.seed, 'success': e.success, 'time_s': e.time_s,
                     'retries': e.retries, 'waited_s': e.waited_s}
                    for e in report.per_episode]}
    return compare_modes(rows(async_report), rows(sync_report))


def compare_modes(async_run: dict, sync_run: dict) -> dict:
    """How much sooner async finishes than sync, from two summaries with `per_episode` rows.

    `faster_by_mean`: 1 - mean(async) / mean(sync), each over its own successes (the issue's
    figure). `paired`: the same over the seeds both completed, so a seed one mode fails does
    not move the other's mean. Where rows carry `waited_s` (time without a chunk), the paired
    figure is split into `waiting` and `motion`: waiting is what a scheduler can win. Where they
    carry `retries`, `without_retries` is the figure over the seeds neither mode retried, which
    the policy's mistakes do not move (docs/measurements.md, session 18).
    """
    a, s = _successes(async_run), _successes(sync_run)
    both = sorted(set(a) & set(s))
    a_mean, s_mean = async_run['mean_time_to_completion_s'], sync_run['mean_time_to_completion_s']
    out = {'faster_by_mean': None if not (a_mean and s_mean) else 1.0 - a_mean / s_mean,
           'paired': {'seeds': len(both), 'async_mean_s': None, 'sync_mean_s': None,
                      'faster': None, 'interval_95': None}}
    if both:
        pa, ps = (sum(d[k]['time_s'] for k in both) / len(both) for d in (a, s))
        out['paired'].update(async_mean_s=pa, sync_mean_s=ps, faster=1.0 - pa / ps,
                             interval_95=bootstrap_interval([a[k]['time_s'] for k in both],
                                                            [s[k]['time_s'] for k in both]))
    rows = [(a[k], s[k]) for k in both]
    if rows and all('waited_s' in r for pair in rows for r in pair):
        total = sum(rs['time_s'] for _, rs in rows)
        waiting = sum(rs['waited_s'] - ra['waited_s'] for ra, rs in rows) / total
        out['paired'].update(waiting=waiting, motion=out['paired']['faster'] - waiting)
    if rows and all('retries' in r for pair in rows for r in pair):
        clean = [(ra['time_s'], rs['time_s']) for ra, rs in rows
                 if ra['retries'] == 0 and rs['retries'] == 0]
        out['without_retries'] = {
            'seeds': len(clean),
            'faster': 1.0 - sum(t for t, _ in clean) / sum(t for _, t in clean) if clean else None}
    return out


def _successes(run: dict) -> dict[int, dict]:
    return {e['seed']: e for e in run['per_episode'] if e['success']}


def bootstrap_interval(async_s: list[float], sync_s: list[float], draws: int = 4000,
                       seed: int = 0) -> list[float] | None:
    """95% interval of the paired figure 1 - mean(async) / mean(sync), resampling the seeds
    with replacement: how far another 10 episodes could move it. A fixed seed, so a report
    reproduces. None for fewer than 2 seeds."""
    if len(async_s) < 2:
        return None
    a, s = np.asarray(async_s, float), np.asarray(sync_s, float)
    picks = np.random.default_rng(seed).integers(0, len(a), size=(draws, len(a)))
    faster = 1.0 - a[picks].mean(axis=1) / s[picks].mean(axis=1)
    return [float(v) for v in np.percentile(faster, [2.5, 97.5])]


def describe_comparison(c: dict) -> str:
    """Async vs sync by mean, and paired; then, where known, what the paired figure is made of
    and what it is without the policy's retries."""
    def pct(x: float | None) -> str:
        return 'n/a' if x is None else f'{x * 100:.1f}%'
    p = c['paired']
    interval = p.get('interval_95')
    spread = '' if interval is None else \
        f' (95% bootstrap interval over seeds {pct(interval[0])} to {pct(interval[1])})'
    text = (f'async finished {pct(c["faster_by_mean"])} sooner than sync by mean time; '
            f'{pct(p["faster"])} on the {p["seeds"]} seeds both completed{spread}')
    if p.get('waiting') is not None:
        text += (f'; of that, {p["waiting"] * 100:.1f} points less time waiting for chunks and '
                 f'{p["motion"] * 100:.1f} points less moving')
    clean = c.get('without_retries')
    if clean is not None:
        text += f'; {pct(clean["faster"])} on the {clean["seeds"]} seeds neither mode retried'
    return text
