"""Human-readable tables for evaluation reports (the JSON carries the same numbers for machines)."""
from __future__ import annotations

from vla_edge.sim.closed_loop import EvalReport


def describe(report: EvalReport, label: str | None = None) -> str:
    label = label or report.mode
    lat = ', '.join(f'{stage} p50 {v["p50"]:.1f} / p95 {v["p95"]:.1f} ms'
                    for stage, v in report.latency_ms.items())
    return (f'{label:<28} success {report.success_rate * 100:5.1f}%  '
            f'time-to-completion {report.mean_time_to_completion_s:5.2f} s  '
            f'stalled ticks {report.stalled_ticks:5d}  '
            f'switch max/median {report.switch_discontinuity_ratio:.2f} '
            f'(p95/p95 {report.switch_p95_ratio:.2f})  '
            f'(start-up wait {report.startup_wait_ticks}, dropped past actions '
            f'{report.dropped_actions})\n{"":<28} latency [{report.latency_source}]: {lat}')


def summary_dict(report: EvalReport) -> dict:
    """The report without per-episode rows (those stay in the full JSON)."""
    d = report.to_dict()
    d.pop('per_episode')
    return d
