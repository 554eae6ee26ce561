"""Velocity commands vs position targets, on the virtual clock (no ROS).

The same reference policy and scheduler (`vla_edge.sim.closed_loop.evaluate`) on the same
held-out seeds, with the sim robot taking either velocities (the model's own actions) or position
targets (the model's chunks integrated from the observed position, `core/position_targets.py`;
the robot a position controller with a speed limit). With velocities a step |delta command| is an
acceleration, and the expert's accelerate-then-cruise steps (40% of them zero) put even its own
switch ratio at ~3; as positions a step is the distance moved. Rows per interface: the scripted
expert planning the chunks (the ceiling), sync, and async with the merges that fit the interface.
Cells as in benchmarks/chunk_scheduling.py: success | time | chunks/episode | switch max/median |
switch p95/p95 | inside max/median.

    .venv/bin/python benchmarks/command_interface.py [--episodes 100] [--seed-offset 1000000]
        [--emulated-ms 300] [--model models/reference]

The last line compares the two defaults (velocity + blend 5, position + offset_fade 40 taking up
offsets no faster than the robot's top speed).
"""
import sys

from chunk_scheduling import parse_arguments, row_cells
from tqdm import tqdm

from vla_edge.cli import merge_config, sim_policy
from vla_edge.core.chunk_merge import MergeConfig
from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.closed_loop import EvalConfig, EvalReport, ExpertPolicy, evaluate
from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.world import SimConfig

EXPERT = 'scripted expert in chunks (ceiling)'
DEFAULTS = {'velocity': 'async, blend 5 (default)',
            'position': 'async, offset_fade 40, top-speed limit (default)'}
ROWS = (   # interface, label, mode, merge
    ('velocity', EXPERT, 'async', MergeConfig()),
    ('velocity', 'sync', 'sync', MergeConfig()),
    ('velocity', DEFAULTS['velocity'], 'async', MergeConfig('blend', 5)),
    ('position', EXPERT, 'async', MergeConfig('offset_fade')),
    ('position', 'sync', 'sync', MergeConfig('offset_fade')),
    ('position', 'async, blend 5', 'async', MergeConfig('blend', 5)),
    ('position', 'async, offset_fade 40, no limit', 'async', MergeConfig('offset_fade')),
    ('position', 'async, offset_fade 20, top-speed limit', 'async',
     merge_config('position', fade_steps=20)),   # at the sim robot's top speed
    ('position', DEFAULTS['position'], 'async', merge_config('position')),
    ('position', 'async, offset_fade 80, top-speed limit', 'async',
     merge_config('position', fade_steps=80)),
)


def main() -> int:
    args = parse_arguments(__doc__)
    runtime = PolicyRuntime(args.model or default_model_dir())
    latencies = (('measured', None), (f'EMULATED {args.emulated_ms:g} ms',
                                      args.emulated_ms / 1e3))
    reports: dict[tuple[str, str, str], EvalReport] = {}
    runs = [(row, lat) for row in ROWS for lat in latencies]
    for (interface, label, mode, merge), (lat_label, lat_s) in tqdm(runs, unit='run'):
        config = SimConfig(command_interface=interface)
        env = TeaTableEnv(config)
        cfg = EvalConfig(mode=mode, episodes=args.episodes, seed_offset=args.seed_offset,
                         latency_s=lat_s, merge=merge, command_interface=interface)
        policy = ExpertPolicy(env) if label == EXPERT else sim_policy(runtime, interface)
        reports[interface, label, lat_label] = evaluate(policy, cfg, env, progress=False)
    print(f'\n{args.episodes} episodes per cell, seeds from {args.seed_offset}; cells: success | '
          'time | chunks/episode | switch max/median | switch p95/p95 | inside max/median')
    for lat_label, _ in latencies:
        print(f'\n| {lat_label} | success | time | chunks/ep | switch max/med | p95/p95 | '
              'inside max/med |\n|---|---|---|---|---|---|---|')
        for interface, label, *_ in ROWS:
            print(f'| {interface}: {label} | {row_cells(reports[interface, label, lat_label])} |')
    edge = latencies[1][0]
    parts = []
    for interface, label in DEFAULTS.items():
        a, s = reports[interface, label, edge], reports[interface, 'sync', edge]
        m = reports[interface, label, 'measured']
        faster = 1.0 - a.mean_time_to_completion_s / s.mean_time_to_completion_s
        parts.append(f'{interface}: switch max/median {m.switch_discontinuity_ratio:.2f} '
                     f'(EMULATED {a.switch_discontinuity_ratio:.2f}), EMULATED async '
                     f'{faster * 100:.1f}% sooner than sync, success '
                     f'{a.success_rate * 100:.0f}% vs {s.success_rate * 100:.0f}%')
    print('; '.join(parts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
