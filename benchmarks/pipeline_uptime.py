"""The whole sim pipeline (vla_node, chunk_executor, watchdog, sim robot and camera, one process,
real DDS, real ONNX Runtime) left running: does its memory grow, do its ticks slow down?

Episodes follow one another (auto_reset), as a robot runs task after task. Every `--every`
seconds it samples the process's resident memory, the executor's jitter p99 over its last 1000
ticks and the counters a robot operator would watch. Memory that keeps growing after the first
minutes (caches and windows fill up, then stay) is a leak.

    .venv/bin/python benchmarks/pipeline_uptime.py [--minutes 10] [--every 60]
        [--command-interface position|velocity]

The last line is the resident memory's growth per hour, fitted over the second half of the run.
"""
import argparse
import os
import sys
import time

import numpy as np

from vla_edge.nodes.bringup import build_pipeline, param_files_for
from vla_edge.nodes.sim_domain import sim_context
from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE


def rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--minutes', type=float, default=10.0)
    p.add_argument('--every', type=float, default=60.0, help='seconds between samples')
    p.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                   default=DEFAULT_COMMAND_INTERFACE, help='as `make demo` (position targets)')
    args = p.parse_args()
    import rclpy

    ctx = sim_context(range(180 + os.getpid() % 20, 230))
    pipe = build_pipeline(param_files_for(args.command_interface), context=ctx,
                          overrides={'sim_robot': {'auto_reset': True}})
    rows = []
    try:
        pipe.nodes['sim_robot'].start_episode()
        pipe.start()
        start = time.monotonic()
        ex, robot, vla = (pipe.nodes[n] for n in ('chunk_executor', 'sim_robot', 'vla_node'))
        print(f'{"min":>6} {"RSS MB":>8} {"jitter p99 ms":>14} {"episodes":>9} {"success":>8} '
              f'{"chunks":>7} {"stalls (this task)":>18}', flush=True)
        while time.monotonic() - start < args.minutes * 60.0 and pipe.running():
            time.sleep(min(args.every, args.minutes * 60.0 - (time.monotonic() - start)))
            snap = ex.snapshot()
            episodes = list(robot.episodes)
            success = np.mean([e['success'] for e in episodes]) if episodes else float('nan')
            row = ((time.monotonic() - start) / 60.0, rss_mb(), snap['jitter_p99_ms'],
                   len(episodes), success, vla._chunks, snap['stalled_ticks'])
            rows.append(row)
            print(f'{row[0]:6.1f} {row[1]:8.1f} {row[2]:14.2f} {row[3]:9d} {row[4]:8.2f} '
                  f'{row[5]:7d} {row[6]:18d}', flush=True)
    finally:
        pipe.stop()
        rclpy.try_shutdown(context=ctx)
    late = [r for r in rows if r[0] >= rows[-1][0] / 2.0]
    if len(late) < 2:
        print('too few samples for a trend: run longer or sample more often', file=sys.stderr)
        return 1
    minutes, memory = np.array([r[0] for r in late]), np.array([r[1] for r in late])
    slope = np.polyfit(minutes, memory, 1)[0] * 60.0
    print(f'resident memory growth over the second half: {slope:+.1f} MB per hour '
          f'({memory[0]:.1f} -> {memory[-1]:.1f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
