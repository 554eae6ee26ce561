"""What the timing of an observation costs: an old frame, and a state newer than its frame.

On a robot the frame a chunk is planned from is tens of milliseconds old, and the newest
joint_states are younger than it. vla_node therefore pairs a frame with the state stamped nearest
to it (`state_pairing: frame_time`). This runs the held-out seeds on the virtual clock, where
the lags are exact, in async mode at the emulated latency. Each row is one observation timing:
- the image `lag` ticks old with its own state (what frame_time pairing gives);
- the image `lag` ticks old with the state of the request tick (pairing with the newest state).

It prints success, mean time and the grasps that closed on nothing (the policy closing the
gripper where the image says the object is).

    .venv/bin/python benchmarks/observation_timing.py [--episodes 100] [--lags 0 1 2]
        [--latency-ms 300]

The last line compares the largest lag's two pairings.
"""
import argparse
import sys

from tqdm import tqdm

from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.closed_loop import EvalConfig, RuntimePolicy, evaluate
from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.world import APERTURE_EMPTY


class MissCountingEnv(TeaTableEnv):
    """Counts grasps that closed on nothing (the aperture reads empty right after a close)."""

    def __init__(self):
        super().__init__()
        self.misses = 0

    def step(self, action):
        was_empty = self.world.aperture == APERTURE_EMPTY
        super().step(action)
        self.misses += (not was_empty) and self.world.aperture == APERTURE_EMPTY


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--episodes', type=int, default=100)
    ap.add_argument('--seed-offset', type=int, default=1_000_000)
    ap.add_argument('--lags', type=int, nargs='+', default=[0, 1, 2],
                    help='image ages in control ticks (20 ms at 50 Hz)')
    ap.add_argument('--latency-ms', type=float, default=300.0, help='EMULATED inference latency')
    args = ap.parse_args()
    policy = RuntimePolicy(PolicyRuntime(default_model_dir()))
    rows = []
    configs = [(lag, at) for lag in args.lags for at in (('image',) if lag == 0
                                                           else ('image', 'request'))]
    for lag, state_at in tqdm(configs, desc='observation timings', unit='run'):
        env = MissCountingEnv()
        cfg = EvalConfig(mode='async', episodes=args.episodes, seed_offset=args.seed_offset,
                         latency_s=args.latency_ms / 1e3, image_lag_ticks=lag, state_at=state_at)
        report = evaluate(policy, cfg, env=env, progress=False)
        rows.append((lag, state_at, report.success_rate, report.mean_time_to_completion_s,
                     env.misses))
    print(f'async, EMULATED {args.latency_ms:g} ms, {args.episodes} seeds from '
          f'{args.seed_offset} (virtual clock)')
    print('image age | state of      | success | mean time | grasps on nothing')
    for lag, state_at, success, mean_s, misses in rows:
        print(f'{lag:3d} ticks | {state_at + " tick":13s} | {success * 100:6.1f}% | '
              f'{mean_s:7.2f} s | {misses:5d}')
    worst = max(args.lags)
    if worst:
        own = next(r for r in rows if r[:2] == (worst, 'image'))
        newest = next(r for r in rows if r[:2] == (worst, 'request'))
        print(f'image {worst} ticks old: its own state {own[2] * 100:.1f}% / {own[4]} misses, '
              f'the newest state {newest[2] * 100:.1f}% / {newest[4]} misses')
    return 0


if __name__ == '__main__':
    sys.exit(main())
