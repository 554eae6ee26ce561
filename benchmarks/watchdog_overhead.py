"""Watchdog check cost per 640x480 frame, and whether the watchdog keeps up with a 30 Hz camera
while the whole sim pipeline runs beside it.

    .venv/bin/python benchmarks/watchdog_overhead.py [--frames 600] [--seconds 20]
        [--command-interface position|velocity]

1. Standalone: an rgb8 Image message of a 640x480 sim scene (upscaled render plus fresh sensor
   noise per frame) through what the node's frame thread does: conversion to RGB, then
   `Watchdog.on_frame` (every frame check and the optical-flow motion check).
2. Live: the in-process pipeline (vla_node with the ONNX runtime, chunk executor, sim robot and
   camera) with the watchdog watching a second, 640x480 camera at 30 Hz rendered from the same
   world. Reported: frames published / checked / dropped by the newest-frame slot, the check time
   inside the node, the frame age when its check finished, and any veto.
The last line is the standalone p95 check time per 640x480 frame.
"""
import argparse
import itertools
import os
import sys
import time

import cv2
import numpy as np

from vla_edge.core.ros_image import ImageConverter, rgb_to_image_msg_fields
from vla_edge.core.watchdog import Watchdog
from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE

WIDTH, HEIGHT = 640, 480


class NoisyUpscaler:
    """128x128 sim render -> 640x480 with per-frame sensor noise (a bank of noise images, so
    making the frame costs far less than checking it). Nearest-neighbour upscaling keeps the
    edges sharp: a smooth upscale would be judged blurred, and rightly so."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.bank = [rng.normal(0, 2.0, (HEIGHT, WIDTH, 3)).astype(np.int16) for _ in range(7)]
        self.k = itertools.count()

    def __call__(self, rgb):
        big = cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST).astype(np.int16)
        return np.clip(big + self.bank[next(self.k) % len(self.bank)], 0, 255).astype(np.uint8)


def standalone(frames: int) -> np.ndarray:
    from sensor_msgs.msg import Image

    env = TeaTableEnv()
    env.reset(1_000_000)
    make = NoisyUpscaler()
    wd = Watchdog()
    converter = ImageConverter()
    costs = []
    for i in range(frames):
        if i % 3 == 0:   # the sim moves at 50 Hz, the camera at 30 Hz
            env.step(env.expert_action())
        msg = Image(**rgb_to_image_msg_fields(make(env.observe().image)))
        t = i / 30.0
        start = time.perf_counter()
        rgb = converter.to_rgb(msg)
        wd.on_frame(rgb, t, t + 0.005, encoding=msg.encoding)
        costs.append(time.perf_counter() - start)
    return np.array(costs[10:]) * 1e3


def live(seconds: float, command_interface: str = DEFAULT_COMMAND_INTERFACE) -> dict:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from vla_edge.nodes.bringup import build_pipeline, param_files_for
    from vla_edge.nodes.isolated_executors import IsolatedExecutors

    class HdCamera(Node):
        def __init__(self, session, context):
            super().__init__('hd_camera', context=context)
            self.session, self.make, self.published = session, NoisyUpscaler(1), 0
            self.pub = self.create_publisher(Image, 'camera_hd/image_raw',
                                             qos_profile_sensor_data)
            self.create_timer(1 / 30.0, self.on_timer)

        def on_timer(self):
            stamp = self.get_clock().now().to_msg()
            rgb = self.session.render()
            if rgb is None:
                return
            msg = Image(**rgb_to_image_msg_fields(self.make(rgb)))
            msg.header.stamp = stamp
            self.pub.publish(msg)
            self.published += 1

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=200 + os.getpid() % 25)
    pipe = build_pipeline(param_files_for(command_interface), context=ctx, overrides={
        'sim_robot': {'auto_reset': True},
        # the policy sees what the watchdog judges (bringup refuses two cameras), here the
        # 640x480 one, which vla_node resizes to its encoder's input
        'vla_node': {'camera_topic': 'camera_hd/image_raw'},
        'watchdog': {'camera_topic': 'camera_hd/image_raw', 'frame.expected_width': WIDTH,
                     'frame.expected_height': HEIGHT}})
    camera = HdCamera(pipe.session, ctx)
    wd = pipe.nodes['watchdog']
    costs, ages = [], []
    check = wd.wd.on_frame

    def timed(frame, stamp_s, now_s, encoding='rgb8'):
        start = time.perf_counter()
        out = check(frame, stamp_s, now_s, encoding)
        costs.append(time.perf_counter() - start)
        ages.append(wd.now_s() - stamp_s)
        return out
    wd.wd.on_frame = timed
    camera_spin = IsolatedExecutors([camera], ctx)
    pipe.nodes['sim_robot'].start_episode()
    pipe.start()
    camera_spin.start()
    try:
        time.sleep(3.0)   # start-up: the model's first runs, DDS discovery
        published0, checked0 = camera.published, wd.counts['frames']
        dropped0, n0 = wd.counts['frames_dropped'], len(costs)
        chunks0 = pipe.nodes['vla_node']._chunks
        time.sleep(seconds)
        out = {'published': camera.published - published0,
               'checked': wd.counts['frames'] - checked0,
               'dropped': wd.counts['frames_dropped'] - dropped0,
               'check_ms': np.array(costs[n0:]) * 1e3, 'age_ms': np.array(ages[n0:]) * 1e3,
               'trips': wd.wd.latch.trips, 'reasons': wd.wd.latch.reasons,
               # all chunks vla_node published (the executor's count restarts with each task)
               'chunks': pipe.nodes['vla_node']._chunks - chunks0}
    finally:
        camera_spin.shutdown()
        pipe.stop()
        camera.destroy_node()
        rclpy.try_shutdown(context=ctx)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=600, help='standalone frames')
    parser.add_argument('--seconds', type=float, default=20.0, help='live run (0: skip)')
    parser.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                        default=DEFAULT_COMMAND_INTERFACE,
                        help='the live pipeline\'s, as `make demo` (position targets)')
    args = parser.parse_args()
    cost = standalone(args.frames)
    p50, p95 = np.percentile(cost, 50), np.percentile(cost, 95)
    print(f'standalone, {len(cost)} frames 640x480: convert + all checks p50 {p50:.2f} ms, '
          f'p95 {p95:.2f} ms, max {cost.max():.2f} ms')
    ok = True
    if args.seconds > 0:
        r = live(args.seconds, args.command_interface)
        rate = r['checked'] / args.seconds
        print(f'live, {args.seconds:g} s beside the pipeline ({r["chunks"]} chunks planned): '
              f'{r["published"]} frames published, {r["checked"]} checked ({rate:.1f} Hz), '
              f'{r["dropped"]} dropped by the newest-frame slot')
        print(f'live check time p50 {np.percentile(r["check_ms"], 50):.2f} ms, p95 '
              f'{np.percentile(r["check_ms"], 95):.2f} ms; frame age when checked p95 '
              f'{np.percentile(r["age_ms"], 95):.2f} ms, max {r["age_ms"].max():.2f} ms; '
              f'vetoes {r["trips"]} {list(r["reasons"])}')
        ok = r['checked'] >= 0.98 * r['published'] and r['trips'] == 0
        print(f'keeps up with 30 Hz: {"yes" if ok else "NO"}')
    print(f'watchdog check p95 per 640x480 frame: {p95:.2f} ms')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
