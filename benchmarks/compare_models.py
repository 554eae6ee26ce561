"""Two model folders side by side: closed loop on the virtual clock, and the committed-prefix join.

Written to judge training-time real-time chunking (a model trained with committed prefixes,
`vla-edge train --committed-prefix-fraction 0.8`) against the shipped one, but any two folders
with the same task work. Part 1 runs sync, async blend and async prefix_inpaint at fixed
latencies (deterministic: no wall-clock latency enters), on the same held-out seeds. Part 2 asks
each model for chunks at states along expert rollouts, with and without a committed prefix of d
actions, and measures the step where the prefix ends and the model's own actions begin (rows d-1
to d): small means the model continues what it was committed to.

    .venv/bin/python benchmarks/compare_models.py A_FOLDER B_FOLDER [--episodes 300]
        [--latencies-ms 20 300] [--prefix 20]
"""
import argparse
import sys

import numpy as np

from vla_edge.core.chunk_merge import MergeConfig
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.closed_loop import EvalConfig, RuntimePolicy, evaluate
from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.expert import expert_chunk

RUNS = (('sync', 'blend'), ('async', 'blend'), ('async', 'prefix_inpaint'))


def closed_loop(runtime: PolicyRuntime, episodes: int, latency_s: float) -> list[str]:
    policy = RuntimePolicy(runtime)
    cells = []
    for mode, merge in RUNS:
        r = evaluate(policy, EvalConfig(mode=mode, episodes=episodes, latency_s=latency_s,
                                        merge=MergeConfig(merge)), progress=False)
        cells.append(f'{r.success_rate * 100:.1f}% / {r.mean_time_to_completion_s:.2f} s'
                     + ('' if mode == 'sync' else f' / {r.switch_p95_ratio:.2f}'))
    return cells


def prefix_join(runtime: PolicyRuntime, d: int, seeds: range) -> dict[str, np.ndarray]:
    """Step |a[d] - a[d-1]| (motion dims) per chunk: free, after the expert's own next d actions,
    and after d actions of another chunk the model planned from the same view."""
    env = TeaTableEnv()
    steps: dict[str, list[float]] = {'free': [], 'expert prefix': [], 'own prefix': []}
    for seed in seeds:
        env.reset(seed)
        for k in range(120):
            if k % 15 == 0:
                obs = env.observe()
                view = runtime.encode_image(obs.image)

                def plan(noise_seed: int, prefix=None, obs=obs, view=view) -> np.ndarray:
                    return runtime.plan_chunk(view, obs.instruction, obs.state, seed=noise_seed,
                                              prefix=prefix).actions
                other = plan(k + 2)
                for name, chunk in (('free', plan(k)),
                                    ('expert prefix', plan(k + 1, expert_chunk(
                                        env.world, env.task, runtime.manifest.chunk_length)[:d])),
                                    ('own prefix', plan(k + 3, other[:d]))):
                    steps[name].append(float(np.linalg.norm(chunk[d, :2] - chunk[d - 1, :2])))
            if env.success:
                break
            env.step(env.expert_action())
    return {k: np.array(v) for k, v in steps.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--episodes', type=int, default=300)
    ap.add_argument('--seed-offset', type=int, default=1_000_000)
    ap.add_argument('--latencies-ms', type=float, nargs='+', default=[20.0, 300.0])
    ap.add_argument('--prefix', type=int, default=20, help='committed actions in part 2')
    ap.add_argument('--join-seeds', type=int, default=40, help='expert rollouts in part 2')
    args = ap.parse_args()
    runtimes = {folder: PolicyRuntime(folder) for folder in (args.a, args.b)}
    print(f'{args.episodes} episodes per cell from seed {args.seed_offset}; cells: success / '
          'time (/ switch p95/p95)')
    print('\n| model | prefix | latency | sync | async blend 5 | async prefix_inpaint |\n'
          '|---|---|---|---|---|---|')
    for folder, rt in runtimes.items():
        for ms in args.latencies_ms:
            cells = closed_loop(rt, args.episodes, ms / 1e3)
            print(f'| {folder} | {rt.prefix_mode} | {ms:g} ms | {" | ".join(cells)} |',
                  flush=True)
    seeds = range(args.seed_offset, args.seed_offset + args.join_seeds)
    print(f'\nstep where a committed prefix of {args.prefix} ends (mean / p95 / max):\n'
          '| model | free chunk | expert prefix | own prefix |\n|---|---|---|---|')
    for folder, rt in runtimes.items():
        joins = prefix_join(rt, args.prefix, seeds)
        print(f'| {folder} | ' + ' | '.join(
            f'{v.mean():.4f} / {np.percentile(v, 95):.4f} / {v.max():.4f}'
            for v in joins.values()) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
