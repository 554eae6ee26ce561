"""Control-period jitter of the chunk executor at 100 Hz while inference runs.

    .venv/bin/python benchmarks/control_jitter.py [--seconds 20] [--rate-hz 100]
                                                  [--realtime-priority 50]
                                                  [--command-interface velocity|position]

Brings the pipeline up as separate processes (`vla-edge bringup --processes`: vla_node and the
sim in theirs, the executor in its own, as deployed) with the executor at --rate-hz, so chunks are
computed continuously while the control timer runs. It reads the executor's own measurement from
/diagnostics (|tick period - nominal|, over its last 1000 ticks). The last line is the p99 in ms.

The executor runs its control loop at SCHED_FIFO `--realtime-priority` (its `realtime_priority`
parameter, as deployed on a robot, like ros2_control's controller manager); 0 measures normal
scheduling, where the other processes on these 2 cores delay ticks by milliseconds.
"""
import argparse
import os
import subprocess
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray

from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE


class CountAcrossResets:
    """The sum of a counter that restarts from 0 now and then, from samples of it."""

    def __init__(self) -> None:
        self.before = 0   # what earlier runs of the counter reached
        self.last = 0

    def add(self, value: int) -> None:
        if value < self.last:   # it restarted
            self.before += self.last
        self.last = value

    @property
    def total(self) -> int:
        return self.before + self.last


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seconds', type=float, default=20.0)
    p.add_argument('--rate-hz', type=float, default=100.0)
    p.add_argument('--realtime-priority', type=int, default=50,
                   help='chunk_executor realtime_priority (0: normal scheduling)')
    p.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                   default=DEFAULT_COMMAND_INTERFACE,
                   help='the pipeline on velocity commands or on position targets (the default; '
                        'config/position_targets.yaml: its merge walks the ticks of a chunk on '
                        'the control thread where the new chunk is ahead)')
    args = p.parse_args()
    from vla_edge.nodes.bringup import param_files_for
    files = [str(f) for f in param_files_for(args.command_interface)]
    env = dict(os.environ, ROS_DOMAIN_ID='91', ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    os.environ.update(ROS_DOMAIN_ID='91', ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    cli = os.path.join(os.path.dirname(sys.executable), 'vla-edge')
    proc = subprocess.Popen([cli, 'bringup', *files, '--processes',
                             '--duration', str(args.seconds + 10),
                             '-p', f'chunk_executor.control_rate_hz={args.rate_hz}',
                             # the gate judges command steps at the executor's rate
                             '-p', f'watchdog.command.control_rate_hz={args.rate_hz}',
                             '-p', 'chunk_executor.diagnostics_period_s=0.5',
                             '-p', f'chunk_executor.realtime_priority={args.realtime_priority}'],
                            env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    node = rclpy.create_node('jitter_bench')
    latest = {}
    # The executor counts chunks and stalls per task (a sim episode, ~2-3 s); summed over the
    # run here. Judged from the last report alone, a run that ended just after an episode reset
    # read as "no inference ran" (0 chunks), which was the counter, not the run.
    counted = {'chunks_received': CountAcrossResets(), 'stalled_ticks': CountAcrossResets()}

    def on_diag(msg):
        for st in msg.status:
            if st.name.endswith('chunk executor'):
                latest.update({kv.key: kv.value for kv in st.values})
                for key, count in counted.items():
                    count.add(int(latest[key]))

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.seconds + 5:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(2)
        proc.wait(timeout=30)
    if not latest:
        print('no diagnostics from the chunk executor', file=sys.stderr)
        return 1
    chunks, stalled = counted['chunks_received'].total, counted['stalled_ticks'].total
    if chunks == 0 or int(latest['chunks_refused']):
        # No chunk executed means no inference ran beside the control loop: not the figure.
        print(f'the executor executed {chunks} chunks and refused {latest["chunks_refused"]}: '
              'inference did not run beside the control loop', file=sys.stderr)
        return 1
    print(f'executor at {args.rate_hz:g} Hz, separate process, inference running '
          f'({chunks} chunks or more over the run; {latest["chunks_resampled"]} sampled at '
          f'{args.rate_hz:g} Hz from the model\'s rate), SCHED_FIFO priority '
          f'{latest.get("realtime_priority", "?")} (asked {args.realtime_priority}): '
          f'stalled ticks {stalled} or more over the run; lost_track {latest["lost_track"]}')
    print(f'control-period jitter p99: {float(latest["jitter_p99_ms"]):.3f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(main())
