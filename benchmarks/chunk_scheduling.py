"""Merge strategy x replanning (max_action_age_s) x latency, on the virtual clock (no ROS).

Each row runs the reference policy in closed loop (`vla_edge.sim.closed_loop.evaluate`, the same
ChunkScheduler as the executor node) on the same held-out seeds, at the measured latency of this
machine and at an EMULATED 300 ms (30% of the 1 s chunk), plus sync as the baseline. Columns:
success, mean time to completion, chunks per episode (inference work), the issue's switch ratio
(max step at a switch / median step inside chunks), p95/p95 of the two, and the same max/median
taken over the policy's own inside steps, which is what that ratio is up against. The first row
is the scripted expert planning the chunks (the default async configuration): its chunks continue
one another exactly, so its switch ratio is what a perfectly continuous policy scores.

    .venv/bin/python benchmarks/chunk_scheduling.py [--episodes 100] [--seed-offset 1000000]
        [--model models/reference]

The last line is the default configuration's emulated-edge result against sync.
"""
import argparse
import sys

import numpy as np
from tqdm import tqdm

from vla_edge.core.chunk_merge import MergeConfig
from vla_edge.core.chunk_scheduler import SchedulerConfig
from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.closed_loop import (
    EvalConfig,
    EvalReport,
    ExpertPolicy,
    RuntimePolicy,
    evaluate,
)
from vla_edge.sim.env import TeaTableEnv

DEFAULT_AGE = SchedulerConfig.max_action_age_s
EXPERT_ROW = 'scripted expert in chunks (ceiling)'
ROWS = (   # label, mode, merge, max_action_age_s
    (EXPERT_ROW, 'async', MergeConfig(), DEFAULT_AGE),
    ('sync', 'sync', MergeConfig(), DEFAULT_AGE),
    (f'blend 5, age {DEFAULT_AGE:g} s (default)', 'async', MergeConfig('blend', 5), DEFAULT_AGE),
    ('blend 5, deadline only', 'async', MergeConfig('blend', 5), 0.0),
    (f'blend 10, age {DEFAULT_AGE:g} s', 'async', MergeConfig('blend', 10), DEFAULT_AGE),
    ('blend 10, deadline only', 'async', MergeConfig('blend', 10), 0.0),
    (f'blend 20, age {DEFAULT_AGE:g} s', 'async', MergeConfig('blend', 20), DEFAULT_AGE),
    (f'replace, age {DEFAULT_AGE:g} s', 'async', MergeConfig('replace'), DEFAULT_AGE),
    (f'temporal_ensemble 5, age {DEFAULT_AGE:g} s', 'async',
     MergeConfig('temporal_ensemble', 5), DEFAULT_AGE),
    (f'prefix_inpaint, age {DEFAULT_AGE:g} s', 'async', MergeConfig('prefix_inpaint'),
     DEFAULT_AGE),
)


def steps(report: EvalReport) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([x for e in report.per_episode for x in e.switch_steps]),
            np.array([x for e in report.per_episode for x in e.inside_steps]))


def row_cells(report: EvalReport) -> str:
    switch, inside = steps(report)
    chunks = np.mean([e.chunks for e in report.per_episode])
    inside_tail = inside.max() / np.median(inside) if len(inside) else float('nan')
    return (f'{report.success_rate * 100:.0f}% | {report.mean_time_to_completion_s:.2f} s | '
            f'{chunks:.1f} | {report.switch_discontinuity_ratio:.2f} | '
            f'{report.switch_p95_ratio:.2f} | {inside_tail:.2f}')


def parse_arguments(doc: str) -> argparse.Namespace:
    """The options every virtual-clock table benchmark takes (this one, command_interface.py)."""
    ap = argparse.ArgumentParser(description=doc.split('\n')[0])
    ap.add_argument('--episodes', type=int, default=100)
    ap.add_argument('--seed-offset', type=int, default=1_000_000)
    ap.add_argument('--emulated-ms', type=float, default=300.0)
    ap.add_argument('--model', default=None, help='model folder (default: the shipped one)')
    return ap.parse_args()


def main() -> int:
    args = parse_arguments(__doc__)
    policy = RuntimePolicy(PolicyRuntime(args.model or default_model_dir()))
    expert_env = TeaTableEnv()
    latencies = (('measured', None), (f'EMULATED {args.emulated_ms:g} ms',
                                      args.emulated_ms / 1e3))
    reports: dict[tuple[str, str], EvalReport] = {}
    runs = [(row, lat) for row in ROWS for lat in latencies]
    for (label, mode, merge, age), (lat_label, lat_s) in tqdm(runs, unit='run'):
        cfg = EvalConfig(mode=mode, episodes=args.episodes, seed_offset=args.seed_offset,
                         latency_s=lat_s, merge=merge, max_action_age_s=age)
        if label == EXPERT_ROW:
            reports[label, lat_label] = evaluate(ExpertPolicy(expert_env), cfg, expert_env,
                                                 progress=False)
        else:
            reports[label, lat_label] = evaluate(policy, cfg, progress=False)
    print(f'\n{args.episodes} episodes per cell, seeds from {args.seed_offset}; cells: success | '
          'time | chunks/episode | switch max/median | switch p95/p95 | inside max/median')
    for lat_label, _ in latencies:
        print(f'\n| {lat_label} | success | time | chunks/ep | switch max/med | p95/p95 | '
              'inside max/med |\n|---|---|---|---|---|---|---|')
        for label, *_ in ROWS:
            print(f'| {label} | {row_cells(reports[label, lat_label])} |')
    edge = latencies[1][0]
    a, s = reports[ROWS[2][0], edge], reports['sync', edge]
    faster = 1.0 - a.mean_time_to_completion_s / s.mean_time_to_completion_s
    print(f'{edge}: default async {a.success_rate * 100:.0f}% {a.mean_time_to_completion_s:.2f} s '
          f'vs sync {s.success_rate * 100:.0f}% {s.mean_time_to_completion_s:.2f} s: '
          f'{faster * 100:.1f}% faster, success {100 * (a.success_rate - s.success_rate):+.0f} '
          'points')
    return 0


if __name__ == '__main__':
    sys.exit(main())
