"""Replay timing: do the replayed inter-message intervals reproduce the recording's?

    .venv/bin/python benchmarks/replay_timing.py [--seconds 10] [--rate 1.0] [--bag BAG]
                                                 [--width 640 --height 480]

Synthesizes a bag (30 Hz rgb8 images and 50 Hz joint_states over --seconds, with the +-1 ms
receive jitter of a real recording; or plays --bag), replays it with `vla_edge.replay.player` at
--rate, and measures on the subscriber side, in a separate process (its own interpreter, as a
consumer on the robot would be): for every topic, each interval between consecutive messages as
received minus the recorded interval / rate. Two receive times are reported: the middleware's
`received_timestamp` (when DDS handed the message over) and the Python callback's clock (adds
the subscriber's executor latency). Issue #5's target: <= 1 ms p95 at rate 1.0. The last line
is the p95 (received_timestamp, all topics) in ms.
"""
import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def synthesize(path: Path, seconds: float, width: int, height: int) -> None:
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image, JointState

    from vla_edge.replay.bag_writer import serialize_exact, write_bag

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8).tobytes()
    msgs = []
    for topic, hz in (('/camera/image_raw', 30.0), ('/joint_states', 50.0)):
        n = int(seconds * hz)
        stamps = T0 + (np.arange(n) * 1e9 / hz + rng.uniform(-1, 1, n) * MS).astype(np.int64)
        for i, t in enumerate(stamps):
            stamp = Time(sec=int(t) // 1_000_000_000, nanosec=int(t) % 1_000_000_000)
            if topic == '/joint_states':
                msg = JointState(name=['x', 'y', 'gripper'], position=[0.1 * i, 0.0, 1.0],
                                 velocity=[0.0, 0.0, 0.0])
                kind = 'sensor_msgs/msg/JointState'
            else:
                msg = Image(height=height, width=width, encoding='rgb8', step=3 * width,
                            data=pixels)
                kind = 'sensor_msgs/msg/Image'
            msg.header.stamp = stamp
            msgs.append((t, topic, serialize_exact(msg), kind))
    msgs.sort(key=lambda m: m[0])
    write_bag(path, [(topic, data, int(t), kind) for t, topic, data, kind in msgs])


def subscriber(domain_id: int, topics: dict[str, tuple[str, bool]], counts: dict[str, int],
               conn) -> None:
    """Child process: receive every message, send back (topic, received_ns, callback_ns)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from vla_edge.replay.msg_types import import_message_class

    rclpy.init(domain_id=domain_id)
    node = Node('replay_timing_subscriber')
    got = []
    for topic, (msgtype, reliable) in topics.items():
        def on_msg(data, info, topic=topic):
            got.append((topic, info['received_timestamp'], time.time_ns()))
        node.create_subscription(import_message_class(msgtype), topic, on_msg,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE
                                            if reliable else ReliabilityPolicy.BEST_EFFORT),
                                 raw=True)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    conn.send('ready')
    end = time.monotonic() + 3600
    while len(got) < sum(counts.values()) and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
        if conn.poll():        # the player is done: whatever arrived is all there is
            conn.recv()
            end = min(end, time.monotonic() + 2.0)
    conn.send(got)
    node.destroy_node()
    rclpy.try_shutdown()


def stats_ms(errors_ns: np.ndarray) -> str:
    e = np.abs(errors_ns) / 1e6
    return (f'p50 {np.percentile(e, 50):.3f}  p95 {np.percentile(e, 95):.3f}  '
            f'max {e.max():.3f}') if len(e) else 'no intervals'


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seconds', type=float, default=10.0)
    p.add_argument('--rate', type=float, default=1.0)
    p.add_argument('--width', type=int, default=128, help='synthesized image width (sim: 128)')
    p.add_argument('--height', type=int, default=128)
    p.add_argument('--bag', type=Path, default=None, help='replay this bag instead')
    p.add_argument('--domain-id', type=int, default=79)
    args = p.parse_args()
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

    import rclpy
    from rclpy.qos import ReliabilityPolicy

    from vla_edge.nodes.isolated_executors import IsolatedExecutors
    from vla_edge.replay.bag_reader import BagReader
    from vla_edge.replay.player import Player, PlayerOptions
    from vla_edge.replay.qos import publisher_qos

    with tempfile.TemporaryDirectory() as tmp:
        bag = args.bag or Path(tmp) / 'bag'
        if args.bag is None:
            synthesize(bag, args.seconds, args.width, args.height)
        with BagReader(bag) as reader:
            topics = {t: (reader.topics[t].msgtype, publisher_qos(
                reader.topics[t].offered_qos).reliability == ReliabilityPolicy.RELIABLE)
                for t in reader.selected}
            recorded = {t: [] for t in topics}
            for m in reader.messages():
                recorded[m.topic].append(m.timestamp_ns)
        counts = {t: len(v) for t, v in recorded.items()}
        print('bag: ' + ', '.join(f'{t} {n} messages' for t, n in counts.items())
              + (f' ({args.width}x{args.height} rgb8)' if args.bag is None else f' ({bag})'))

        mp = multiprocessing.get_context('spawn')
        parent, child = mp.Pipe()
        proc = mp.Process(target=subscriber, args=(args.domain_id, topics, counts, child))
        proc.start()
        ctx = rclpy.Context()
        rclpy.init(context=ctx, domain_id=args.domain_id)
        player = Player(bag, PlayerOptions(rate=args.rate), context=ctx)
        executors = IsolatedExecutors([player], context=ctx).start()
        try:
            if not parent.poll(60):
                raise RuntimeError('the subscriber process did not start')
            parent.recv()
            end = time.monotonic() + 20
            while not all(player.subscriber_counts().values()) and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.5)      # both ends of each match settle
            player.play()
            if not player.wait(args.seconds / args.rate + 60) or player.error:
                raise RuntimeError(f'playback failed: {player.error}')
            parent.send('done')
            got = parent.recv()
            publisher = player.timing_stats()
        finally:
            executors.shutdown()
            player.destroy_node()
            rclpy.try_shutdown(context=ctx)
            proc.join(timeout=10)

    received = {t: [g for g in got if g[0] == t] for t in topics}
    dds_err, callback_err, lines = [], [], []
    for topic, stamps in recorded.items():
        rows = received[topic]
        if len(rows) != len(stamps):
            lines.append(f'  {topic}: {len(rows)} of {len(stamps)} received: intervals not '
                         f'paired (a message was lost)')
            continue
        want = np.diff(stamps) / args.rate
        dds = np.diff([r[1] for r in rows]) - want
        cb = np.diff([r[2] for r in rows]) - want
        dds_err.append(dds)
        callback_err.append(cb)
        lines.append(f'  {topic}: {stats_ms(dds)}  (callback: {stats_ms(cb)})')
    if not dds_err:
        print('\n'.join(lines))
        return 1
    dds_all, cb_all = np.concatenate(dds_err), np.concatenate(callback_err)
    print(f'replayed at rate {args.rate:g}: {len(got)} of {sum(counts.values())} messages '
          f'received; interval error vs the recording (ms):')
    print(f'  all topics, DDS received_timestamp: {stats_ms(dds_all)}')
    print(f'  all topics, subscriber callback:    {stats_ms(cb_all)}')
    print('\n'.join(lines))
    print(f'  publisher side (player.timing_stats): interval error p95 '
          f'{publisher.get("interval_error_p95_ms", float("nan")):.3f}, lateness p95 '
          f'{publisher["lateness_p95_ms"]:.3f} ms')
    print(f'{np.percentile(np.abs(dds_all), 95) / 1e6:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
