"""Hours of control ticks through the executor's scheduler (virtual clock, no ROS): what it keeps
in memory and what a diagnostics publish costs as the run goes on.

An executor on a robot runs for hours between resets, and every tick adds a step to the
smoothness figures. The diagnostics publish runs on the control thread, so its cost must not grow
with uptime. Chunks (50 actions, a smooth random walk) are replanned as in async mode with a 10 ms
reply; memory is the growth of this process's resident set since the scheduler was built.

    .venv/bin/python benchmarks/long_run_memory.py [--hours 1] [--rate 50] [--checkpoints 4]

The last line is the growth of memory and of the diagnostics cost from the first checkpoint to
the last.
"""
import argparse
import sys
import time

import numpy as np
from tqdm import tqdm

from vla_edge.core.chunk_merge import MergeConfig
from vla_edge.core.chunk_scheduler import ChunkScheduler, SchedulerConfig


def rss_mb() -> float:
    """Resident set of this process (Linux)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def diagnostics_cost_ms(scheduler: ChunkScheduler, repeats: int = 20) -> float:
    """Median time of what the node's snapshot computes from the step history."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        _ = scheduler.stats.switch_discontinuity_ratio
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--hours', type=float, default=1.0)
    p.add_argument('--rate', type=float, default=50.0, help='control rate, Hz')
    p.add_argument('--checkpoints', type=int, default=4)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    before = rss_mb()
    s = ChunkScheduler(SchedulerConfig(control_rate_hz=args.rate, merge=MergeConfig('blend')))
    total = int(args.hours * 3600 * args.rate)
    marks = {int(total * (i + 1) / args.checkpoints) for i in range(args.checkpoints)}
    rows = []
    for tick in tqdm(range(1, total + 1), desc='ticks', unit='tick', unit_scale=True,
                     mininterval=1.0):
        if s.wants_chunk(tick):
            s.request_sent(tick)
            start = s.queue.action_at(tick)
            walk = np.cumsum(rng.normal(scale=0.01, size=(50, 3)), axis=0)
            s.chunk_arrived(walk + (0.0 if start is None else start), tick, tick, 0.01)
        s.next_action(tick)
        if tick in marks:
            memory_mb = rss_mb() - before
            cost = diagnostics_cost_ms(s)
            steps = len(s.stats.switch_steps) + len(s.stats.inside_steps)
            rows.append((tick / args.rate / 3600, memory_mb, cost, steps))
    print(f'{"uptime h":>9} {"RSS +MB":>10} {"diagnostics ms":>15} {"steps kept":>11}')
    for hours, memory_mb, cost, steps in rows:
        print(f'{hours:9.2f} {memory_mb:10.2f} {cost:15.3f} {steps:11d}')
    (h0, m0, c0, _), (h1, m1, c1, _) = rows[0], rows[-1]
    print(f'from {h0:.2f} h to {h1:.2f} h of uptime: memory {m0:.2f} -> {m1:.2f} MB, '
          f'diagnostics {c0:.3f} -> {c1:.3f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(main())
