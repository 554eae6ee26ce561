"""Pipeline overhead: camera image stamp -> chunk published by vla_node, over the raw ONNX time of
the stages that made that chunk (vision encoder + backbone + all denoising steps), same run, same
chunks. The time until a subscriber in another node has the chunk is printed too.

    .venv/bin/python benchmarks/pipeline_overhead.py [--seconds 20] [--camera-hz 10]
        [--transport-floor]

A camera node in its own process publishes sim frames over DDS; vla_node runs free (plan_on_frame:
one chunk per frame, so no frame waits for a request); a subscriber records when each chunk
arrives. The ratio
is mean(published - image stamp) / mean(raw ONNX seconds). The last line is the ratio.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.ros_image import rgb_to_image_msg_fields
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.nodes.messages import stamp_to_s
from vla_edge.nodes.vla_node import VlaNode
from vla_edge.sim.env import TeaTableEnv


class Camera(Node):
    """Publishes a pre-rendered sim frame (stamped just before publishing) and the robot state;
    runs in its own process, as a camera driver would."""

    def __init__(self, camera_hz):
        super().__init__('overhead_camera')
        self.env = TeaTableEnv()
        self.obs = self.env.reset(1_000_000)
        self.image_pub = self.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
        self.state_pub = self.create_publisher(JointState, 'joint_states', 10)
        self.create_timer(1.0 / camera_hz, self.on_timer)

    def on_timer(self):
        s = self.obs.state
        js = JointState(name=['x', 'y', 'gripper'], position=[float(v) for v in s[:3]],
                        velocity=[float(s[3]), float(s[4]), 0.0])
        self.state_pub.publish(js)
        msg = Image(**rgb_to_image_msg_fields(self.obs.image))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.image_pub.publish(msg)


class Recorder(Node):
    """When each chunk reaches another node (keyed by its observation stamp); with
    `frames`, also how long each frame takes to reach a bare subscriber: the DDS + rclpy floor
    of the camera -> vla_node hop, which no node code can go below."""

    def __init__(self, context, frames=False):
        super().__init__('overhead_recorder', context=context)
        self.arrivals = {}
        self.frame_delays = []
        self.create_subscription(JointTrajectory, 'action_chunk', self.on_chunk, 10)
        if frames:
            self.create_subscription(Image, 'camera/image_raw', self.on_frame,
                                     qos_profile_sensor_data)

    def _now(self):
        return self.get_clock().now().nanoseconds * 1e-9

    def on_chunk(self, msg):
        self.arrivals[round(stamp_to_s(msg.header.stamp), 6)] = self._now()

    def on_frame(self, msg):
        self.frame_delays.append(self._now() - stamp_to_s(msg.header.stamp))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seconds', type=float, default=20.0)
    p.add_argument('--camera-hz', type=float, default=10.0)
    p.add_argument('--transport-floor', action='store_true',
                   help='also time each frame into a bare subscriber (a second reader of the '
                        'camera topic, so run the ratio without it)')
    p.add_argument('--camera-only', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.update(ROS_DOMAIN_ID='88', ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    if args.camera_only:
        from vla_edge.nodes.spin import spin_nodes
        spin_nodes(lambda: [Camera(args.camera_hz)])
        return 0
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    # The camera repeats one frame: the key-frame gate would skip encoding it, so it is off here
    # (the ratio is over the whole path, vision encoder included).
    vla = VlaNode(context=ctx, parameter_overrides=[Parameter('plan_on_frame', value=True),
                                                    Parameter('key_frame_min_change', value=0.0)])
    bench = Recorder(ctx, frames=args.transport_floor)
    ex = IsolatedExecutors([vla, bench], context=ctx, kind=None).start()   # as bringup does
    kind = f'vla_node on {ex.kinds[0]}, recorder on {ex.kinds[1]}'
    camera = subprocess.Popen([sys.executable, __file__, '--camera-only',
                               '--camera-hz', str(args.camera_hz)])
    try:
        time.sleep(args.seconds)
    finally:
        camera.send_signal(signal.SIGINT)
        camera.wait(timeout=30)
        ex.shutdown()
        vla.destroy_node()
        bench.destroy_node()
        rclpy.try_shutdown(context=ctx)
    rows = [(published - stamp, bench.arrivals.get(round(stamp, 6), float('nan')) - stamp, raw)
            for stamp, raw, published in vla.chunk_records[3:]]
    if not rows:
        print('no chunks measured', file=sys.stderr)
        return 1
    published, received, raw = (np.array(c) * 1e3 for c in zip(*rows))
    print(f'chunks measured: {len(rows)} (camera {args.camera_hz:g} Hz, {args.seconds:g} s, '
          f'{kind})')
    for name, v in (('published by vla_node', published), ('received by a subscriber', received)):
        v = v[np.isfinite(v)]
        print(f'image stamp -> chunk {name}: mean {v.mean():.2f} ms, p50 {np.median(v):.2f} ms, '
              f'p95 {np.percentile(v, 95):.2f} ms ({len(v)} chunks)')
    if bench.frame_delays:
        v = np.array(bench.frame_delays[3:]) * 1e3
        print(f'image stamp -> frame in a bare subscriber (transport floor): mean {v.mean():.2f} '
              f'ms, p50 {np.median(v):.2f} ms ({len(v)} frames)')
    print(f'raw ONNX stages (vision + backbone + denoising): mean {raw.mean():.2f} ms, '
          f'p50 {np.median(raw):.2f} ms')
    print(f'pipeline overhead ratio (published): {published.mean() / raw.mean():.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
