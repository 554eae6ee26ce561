"""Key-frame gating of the vision thread (vla_node `key_frame_min_change`), on the virtual clock.

Each row runs the reference policy in closed loop (`vla_edge.sim.closed_loop.evaluate`) on the
same held-out seeds, rendering a frame every control tick and planning every chunk from the last
frame the gate let through, stamped with the current tick (as vla_node re-stamps the anchor's
embedding). The control row sets the threshold below the sim's sensor noise, so it encodes every
frame from the very same frame sequence. Columns: success, mean time to completion, frames the
gate skipped (the vision-encoder work saved), at this machine's latency and at an EMULATED 300 ms.

    .venv/bin/python benchmarks/key_frames.py [--episodes 100] [--seed-offset 1000000]

The last line is the default threshold's emulated-edge async result against the control row.
"""
import argparse
import sys

from tqdm import tqdm

from vla_edge.core.key_frame import DEFAULT_MAX_INTERVAL_S, DEFAULT_MIN_CHANGE
from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.closed_loop import EvalConfig, EvalReport, RuntimePolicy, evaluate

DEFAULT = DEFAULT_MIN_CHANGE
CONTROL = 0.01   # levels: below the sim's sensor noise, so every frame is encoded
THRESHOLDS = ((f'every frame (threshold {CONTROL:g})', CONTROL),
              (f'threshold {DEFAULT:g} (default)', DEFAULT),
              (f'threshold {2 * DEFAULT:g}', 2 * DEFAULT))


def skipped(report: EvalReport) -> float:
    seen = sum(e.frames_seen for e in report.per_episode)
    return sum(e.frames_skipped for e in report.per_episode) / max(seen, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--episodes', type=int, default=100)
    ap.add_argument('--seed-offset', type=int, default=1_000_000)
    args = ap.parse_args()
    policy = RuntimePolicy(PolicyRuntime(default_model_dir()))
    runs = [(mode, lat, label, threshold) for lat in (None, 0.3) for mode in ('async', 'sync')
            for label, threshold in THRESHOLDS]
    reports: dict[tuple, EvalReport] = {}
    for mode, lat, label, threshold in tqdm(runs, unit='run'):
        cfg = EvalConfig(mode=mode, episodes=args.episodes, seed_offset=args.seed_offset,
                         latency_s=lat, key_frame_min_change=threshold,
                         key_frame_max_interval_s=DEFAULT_MAX_INTERVAL_S)
        reports[mode, lat, label] = evaluate(policy, cfg, progress=False)
    print(f'\n{args.episodes} episodes per cell, seeds from {args.seed_offset}')
    for lat in (None, 0.3):
        name = 'this machine' if lat is None else 'EMULATED 300 ms'
        print(f'\n| {name} | mode | success | time | frames skipped |\n|---|---|---|---|---|')
        for mode in ('async', 'sync'):
            for label, _ in THRESHOLDS:
                r = reports[mode, lat, label]
                print(f'| {label} | {mode} | {r.success_rate * 100:.0f}% | '
                      f'{r.mean_time_to_completion_s:.2f} s | {skipped(r) * 100:.1f}% |')
    base, gated = (reports['async', 0.3, THRESHOLDS[i][0]] for i in (0, 1))
    print(f'EMULATED 300 ms async: threshold {DEFAULT:g} {gated.success_rate * 100:.0f}% / '
          f'{gated.mean_time_to_completion_s:.2f} s, {skipped(gated) * 100:.1f}% of frames '
          f'skipped, vs every frame {base.success_rate * 100:.0f}% / '
          f'{base.mean_time_to_completion_s:.2f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
