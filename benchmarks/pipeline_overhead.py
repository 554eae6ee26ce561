"""Pipeline overhead: camera image stamp -> chunk received by a subscriber, over the raw ONNX
time of the stages that made that chunk (vision encoder + backbone + all denoising steps), same
run, same chunks.

    .venv/bin/python benchmarks/pipeline_overhead.py [--seconds 20] [--camera-hz 10]

A camera node publishes sim frames over DDS; vla_node runs free (plan_on_frame: one chunk per
frame, so no frame waits for a request); a subscriber records when each chunk arrives. The ratio
is mean(arrival - image stamp) / mean(raw ONNX seconds). The last line is the ratio.
"""
import argparse
import os
import sys
import time

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.ros_image import rgb_to_image_msg_fields
from vla_edge.nodes.messages import stamp_to_s
from vla_edge.nodes.vla_node import VlaNode
from vla_edge.sim.env import TeaTableEnv


class CameraAndRecorder(Node):
    def __init__(self, context, camera_hz):
        super().__init__('overhead_bench', context=context)
        self.env = TeaTableEnv()
        self.obs = self.env.reset(1_000_000)
        self.image_pub = self.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
        self.state_pub = self.create_publisher(JointState, 'joint_states', 10)
        self.create_subscription(JointTrajectory, 'action_chunk', self.on_chunk, 10)
        self.arrivals = {}
        self.create_timer(1.0 / camera_hz, self.on_timer)

    def on_timer(self):
        s = self.obs.state
        js = JointState(name=['x', 'y', 'gripper'], position=[float(v) for v in s[:3]],
                        velocity=[float(s[3]), float(s[4]), 0.0])
        self.state_pub.publish(js)
        msg = Image(**rgb_to_image_msg_fields(self.obs.image))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.image_pub.publish(msg)

    def on_chunk(self, msg):
        self.arrivals[round(stamp_to_s(msg.header.stamp), 6)] = \
            self.get_clock().now().nanoseconds * 1e-9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seconds', type=float, default=20.0)
    p.add_argument('--camera-hz', type=float, default=10.0)
    args = p.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=88)
    vla = VlaNode(context=ctx, parameter_overrides=[Parameter('plan_on_frame', value=True)])
    bench = CameraAndRecorder(ctx, args.camera_hz)
    ex = MultiThreadedExecutor(num_threads=4, context=ctx)
    ex.add_node(vla)
    ex.add_node(bench)
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
    finally:
        ex.shutdown()
        vla.destroy_node()
        bench.destroy_node()
        rclpy.try_shutdown(context=ctx)
    pairs = [(bench.arrivals[round(stamp, 6)] - stamp, raw)
             for stamp, raw, _ in vla.chunk_records[3:] if round(stamp, 6) in bench.arrivals]
    if not pairs:
        print('no chunks measured', file=sys.stderr)
        return 1
    end_to_end = np.array([e for e, _ in pairs]) * 1e3
    raw = np.array([r for _, r in pairs]) * 1e3
    print(f'chunks measured: {len(pairs)} (camera {args.camera_hz:g} Hz, {args.seconds:g} s)')
    print(f'image stamp -> chunk received: mean {end_to_end.mean():.2f} ms, '
          f'p50 {np.median(end_to_end):.2f} ms, p95 {np.percentile(end_to_end, 95):.2f} ms')
    print(f'raw ONNX stages (vision + backbone + denoising): mean {raw.mean():.2f} ms, '
          f'p50 {np.median(raw):.2f} ms')
    print(f'pipeline overhead ratio: {end_to_end.mean() / raw.mean():.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
