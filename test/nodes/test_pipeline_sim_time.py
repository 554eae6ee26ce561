"""Stalls through the real vla_node and ONNX runtime, on sim time.

The test owns /clock and moves it one control tick at a time, feeding frames and joint states
stamped on it; vla_node's injected latency (`emulated_latency_s`) runs on the same clock. So
the inference latency the executor sees is exact (0.3 s = 15 ticks, whatever this machine's
load): async's 0 stalled ticks is asserted exactly, sync's stalls as at least 14 per chunk,
which the wall clock of a 2-core CI machine
does not allow (test_pipeline.py).
"""
import time

import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from vla_edge.core.ros_image import rgb_to_image_msg_fields
from vla_edge.nodes.chunk_executor import ChunkExecutor
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.nodes.messages import s_to_stamp
from vla_edge.nodes.vla_node import VlaNode
from vla_edge.sim.env import TeaTableEnv

RATE = 50.0
LATENCY_S = 0.3          # 15 ticks; a chunk lasts 50
TICK_WALL_S = 0.012      # wall time per sim tick: the real plan (~15 ms) ends well inside 15 ticks


def _run(ctx, runtime, mode, ticks):
    sim = [Parameter('use_sim_time', value=True)]
    vla = VlaNode(context=ctx, runtime=runtime, parameter_overrides=sim + [
        Parameter('emulated_latency_s', value=LATENCY_S)])
    executor = ChunkExecutor(context=ctx, parameter_overrides=sim + [
        Parameter('mode', value=mode), Parameter('control_rate_hz', value=RATE)])
    world = rclpy.create_node('world', context=ctx)
    clock = world.create_publisher(Clock, '/clock', 10)
    camera = world.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    states = world.create_publisher(JointState, 'joint_states', 10)
    env = TeaTableEnv()
    obs = env.reset(1_000_000)
    spin = IsolatedExecutors([vla, executor, world], ctx).start()
    try:
        for tick in range(ticks):
            now = s_to_stamp(1.0 + tick / RATE)
            clock.publish(Clock(clock=now))
            state = JointState(name=['x', 'y', 'gripper'], position=[float(v) for v in
                                                                     obs.state[:3]],
                               velocity=[float(obs.state[3]), float(obs.state[4]), 0.0])
            state.header.stamp = now
            states.publish(state)
            if tick % 2 == 0:   # 25 Hz camera
                frame = Image(**rgb_to_image_msg_fields(obs.image))
                frame.header.stamp = now
                camera.publish(frame)
            time.sleep(TICK_WALL_S)
            if tick == 40:       # the first chunk has come: count from here
                assert executor.scheduler.stats.chunks_received >= 1, 'no chunk in 40 ticks'
                executor.reset_queue()
        return executor.snapshot(), vla
    finally:
        spin.shutdown()
        for node in (vla, executor, world):
            node.destroy_node()


@pytest.mark.parametrize('mode', ['async', 'sync'])
def test_with_latency_below_half_a_chunk_async_never_stalls_and_sync_does(
        ros_context, reference_runtime, mode):
    snap, vla = _run(ros_context, reference_runtime, mode, ticks=340)
    assert not vla._errors
    assert snap['chunks_received'] >= 4
    assert snap['latency_p95_ms'] == pytest.approx(LATENCY_S * 1e3, abs=25.0)   # on sim time
    if mode == 'async':
        assert snap['stalled_ticks'] == 0
    else:   # each chunk played to its end, then ~15 ticks of waiting for the next
        assert snap['stalled_ticks'] >= (snap['chunks_received'] - 1) * 14
    assert snap['chunks_refused'] == 0
