"""How much a 10-episode async-vs-sync figure moves with the policy's noise alone.

`make demo` compares async and sync on 10 real-time episodes. Here the same held-out seeds run
on the virtual clock (exact emulated latency, no timing noise), once per noise draw: each draw
is one possible demo. It prints each draw's speed-up (1 - mean async time / mean sync time,
each over its own successes), the pooled figures, how heavy each mode's tail is, and what each
draw's paired figure is made of: less waiting for chunks (what the pipeline controls) and less
moving (sync recovering more slowly from the policy's retries), and the figure over the seeds
neither mode retried. On
position targets (the default) also each draw's async switch max/median, with what sets it: the
median step inside chunks, and the share of those steps at the robot's top speed and below a
third of it (the median falls between the two).

    .venv/bin/python benchmarks/emulated_spread.py [--draws 10] [--episodes 10] [--latency-ms 300]
        [--command-interface position|velocity]

The last line is the range of the per-draw speed-ups.
"""
import argparse
import sys

import numpy as np
from tqdm import tqdm

from vla_edge.cli import merge_config, sim_policy
from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.closed_loop import EvalConfig, evaluate
from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE, SimConfig
from vla_edge.tools.eval_report import compare_reports


class RedrawnNoise:
    """The same policy with a different (still deterministic) noise stream per draw."""

    def __init__(self, runtime: PolicyRuntime, draw: int, interface: str):
        self.policy = sim_policy(runtime, interface)   # as `vla-edge eval` runs it
        self.offset = 7919 * 1_000_003 * draw

    def plan(self, obs, seed, prefix=None):
        return self.policy.plan(obs, seed + self.offset, prefix)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--draws', type=int, default=10)
    ap.add_argument('--episodes', type=int, default=10, help='episodes per draw (the demo: 10)')
    ap.add_argument('--seed-offset', type=int, default=1_000_000)
    ap.add_argument('--latency-ms', type=float, default=300.0, help='EMULATED inference latency')
    ap.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                    default=DEFAULT_COMMAND_INTERFACE, help='as `make demo` (position targets)')
    args = ap.parse_args()
    interface = args.command_interface
    runtime = PolicyRuntime(default_model_dir())
    top = SimConfig(command_interface='position').max_step_distance
    runs, switch_rows = {}, []
    reports: dict[str, list] = {'async': [], 'sync': []}
    for mode in ('async', 'sync'):
        times, done = [], []
        for draw in tqdm(range(args.draws), desc=mode, unit='draw'):
            cfg = EvalConfig(mode=mode, episodes=args.episodes, seed_offset=args.seed_offset,
                             latency_s=args.latency_ms / 1e3, command_interface=interface,
                             merge=merge_config(interface))
            report = evaluate(RedrawnNoise(runtime, draw, interface), cfg, progress=False)
            reports[mode].append(report)
            times.append([e.time_s for e in report.per_episode])
            done.append([e.success for e in report.per_episode])
            if mode == 'async' and interface == 'position':
                inside = np.concatenate([e.inside_steps for e in report.per_episode])
                switch_rows.append((report.switch_discontinuity_ratio,
                                    report.switch_discontinuity_ratio_without_retries,
                                    np.median(inside),
                                    np.mean(inside >= top * (1 - 1e-6)),
                                    np.mean(inside < top / 3)))
        runs[mode] = (np.array(times), np.array(done))
    print(f'EMULATED {args.latency_ms:g} ms, {args.draws} noise draws x {args.episodes} seeds '
          f'from {args.seed_offset} (virtual clock, {interface} commands)')
    if interface == 'position':   # a step is the distance moved: top speed is one step
        print(f'async per draw: switch max/median | the same without retried episodes | '
              f'median step (top speed {top:g}) | steps at top speed | below a third of it')
        for ratio, clean, median, at_top, slow in switch_rows:
            print(f'  {ratio:.2f} | {clean:.2f} | {median:.4f} | {at_top * 100:.0f}% | '
                  f'{slow * 100:.0f}%')
    for mode, (t, ok) in runs.items():
        good = t[ok]
        print(f'{mode:5s}: success {ok.mean() * 100:.1f}%, time mean {good.mean():.2f} s, '
              f'p50 {np.median(good):.2f}, p90 {np.percentile(good, 90):.2f}, '
              f'max {good.max():.2f}, successes over 5 s: {(good > 5).sum()}')
    (ta, oka), (ts, oks) = runs['async'], runs['sync']
    both = oka & oks
    print(f'pooled: {(1 - ta[oka].mean() / ts[oks].mean()) * 100:.1f}% faster by mean, '
          f'{(1 - ta[both].mean() / ts[both].mean()) * 100:.1f}% paired over {both.sum()} '
          'episodes both completed')
    parts = [compare_reports(a, s) for a, s in zip(reports['async'], reports['sync'])]
    per_draw = [c['faster_by_mean'] * 100 for c in parts]
    print('per draw:', ' '.join(f'{x:.1f}%' for x in per_draw))
    print('per draw, paired: less waiting | less moving | over the seeds neither mode retried '
          '(seeds)')
    def pct(x: float | None) -> str:
        return 'n/a' if x is None else f'{x * 100:.1f}'
    for c in parts:   # a draw with no seed both modes completed has no split
        clean = c.get('without_retries', {'faster': None, 'seeds': 0})
        print(f'  {pct(c["paired"].get("waiting"))} | {pct(c["paired"].get("motion"))} | '
              f'{pct(clean["faster"])}% ({clean["seeds"]})')
    retried = {m: sum(r.episodes_with_retries for r in reports[m]) for m in reports}
    print(f'episodes with retries: async {retried["async"]}, sync {retried["sync"]} of '
          f'{args.draws * args.episodes}')
    print(f'{args.episodes}-episode speed-up over {args.draws} draws: min {min(per_draw):.1f}%, '
          f'median {np.median(per_draw):.1f}%, max {max(per_draw):.1f}%')
    return 0


if __name__ == '__main__':
    sys.exit(main())
