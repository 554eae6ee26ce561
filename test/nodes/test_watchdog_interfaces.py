"""The watchdog's interfaces beyond the defaults: a compressed camera stream, the robot's command
type on `command`, and a command_raw of a type it cannot gate (named, not silently ignored)."""
import re
import time

import cv2
import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.polling import wait_until
from vla_edge.core.ros_image import rgb_to_image_msg_fields
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.nodes.messages import chunk_to_trajectory
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.watchdog_node import WatchdogNode

from .test_watchdog_node import healthy_frame


class Harness:
    def __init__(self, ctx, **params):
        self.wd = WatchdogNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        self.io = rclpy.create_node('harness', context=ctx)
        self.spin = IsolatedExecutors([self.wd, self.io], ctx).start()

    def close(self):
        self.spin.shutdown()
        self.wd.destroy_node()
        self.io.destroy_node()


@pytest.fixture
def harness(ros_context):
    made = []

    def make(**params):
        made.append(Harness(ros_context, **params))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_with_use_compressed_it_checks_the_compressed_stream(harness):
    """A camera that publishes only CompressedImage must still arm the frame checks (else the
    stale check never clears and the robot only ever gets the safe command)."""
    h = harness(use_compressed=True)
    pub = h.io.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                qos_profile_sensor_data)

    def send(data):
        msg = CompressedImage(format='jpeg', data=data)
        msg.header.stamp = h.wd.get_clock().now().to_msg()
        pub.publish(msg)

    ok = cv2.imencode('.jpg', cv2.cvtColor(healthy_frame(), cv2.COLOR_RGB2BGR))[1].tobytes()
    assert wait_until(lambda: send(ok) or h.wd.counts['frames'] >= 3, 5.0)
    assert h.wd.counts['frames_unreadable'] == 0
    assert not h.wd.wd.frames.last_report.faults     # decoded and judged healthy
    send(b'not a jpeg')
    assert wait_until(lambda: h.wd.counts['frames_unreadable'] == 1, 5.0)
    assert any("compressed 'jpeg'" in r.reason for r in h.wd.wd.frames.last_report.results)


def test_the_robot_gets_its_own_command_type(harness):
    """command_raw stays Float64MultiArray (all dimensions checked); `command` is the twist a
    velocity-commanded base takes, each dimension in the field twist.fields names."""
    h = harness(command_type='twist_stamped',
                **{'twist.fields': ['linear.x', 'angular.z', ''], 'twist.frame_id': 'base'})
    got = []
    h.io.create_subscription(TwistStamped, 'command', got.append, 10)
    raw = h.io.create_publisher(Float64MultiArray, 'command_raw', 10)
    camera = h.io.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    policy = h.io.create_publisher(JointTrajectory, 'action_chunk', 10)   # its heartbeat

    def feed():
        policy.publish(chunk_to_trajectory(np.tile([0.1, 0.05, -1.0], (50, 1)), 0.0, 50.0,
                                           ['vx', 'wz', 'grip']))
        msg = Image(**rgb_to_image_msg_fields(healthy_frame()))
        msg.header.stamp = h.wd.get_clock().now().to_msg()
        camera.publish(msg)
        raw.publish(Float64MultiArray(data=[0.1, 0.05, -1.0]))
        time.sleep(0.02)

    def arrived():
        t = got[-1].twist if got else None
        return t is not None and t.linear.x == pytest.approx(0.1) and \
            t.angular.z == pytest.approx(0.05)

    assert wait_until(lambda: feed() or arrived(), 5.0), h.wd.counts
    t = got[-1].twist
    assert (t.linear.y, t.linear.z, t.angular.x, t.angular.y) == (0.0, 0.0, 0.0, 0.0)
    assert all(isinstance(m, TwistStamped) for m in got) and got[-1].header.stamp.sec > 0
    assert got[-1].header.frame_id == 'base'


def test_a_command_raw_of_another_type_is_named(harness, ros_context):
    """An executor in another process set to twist_stamped (in one process DDS refuses the
    second type outright)."""
    h = harness()
    other = rclpy.Context()
    rclpy.init(context=other, domain_id=ros_context.get_domain_id())
    try:
        node = rclpy.create_node('executor_elsewhere', context=other)
        node.create_publisher(TwistStamped, 'command_raw', 10)
        # (the graph can name a new publisher's node _NODE_NAME_UNKNOWN_ for a moment)
        assert wait_until(lambda: h.wd._check_command_raw_types() or
                          'executor_elsewhere' in str(h.wd.command_raw_mismatch), 5.0)
        assert h.wd.command_raw_mismatch == ['/executor_elsewhere '
                                             '(geometry_msgs/msg/TwistStamped)']
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=other)


@pytest.mark.parametrize('overrides, message', [
    ({'chunk_executor': {'command_type': 'twist_stamped'}},
     "watchdog gates float64_multi_array .* set the robot's interface as watchdog.command_type"),
    ({'watchdog': {'command_type': 'joint_trajectory'}},
     'watchdog.command_type .* the simulated robot takes float64_multi_array'),
    ({'chunk_executor': {'control_rate_hz': 100.0}},
     'ticks at 100 Hz but the watchdog checks commands at 50 Hz .* set it to the executor'),
    ({'vla_node': {'camera_topic': '/wrist/image_raw'}},
     "vla_node reads the camera on '/wrist/image_raw' but the watchdog on 'camera/image_raw'"),
])
def test_bringup_refuses_a_command_chain_that_does_not_meet(overrides, message):
    """Checked on the parameter values before any node starts (in-process and --processes)."""
    from vla_edge.nodes.bringup import check_param_files, default_param_files

    with pytest.raises(ParameterError, match=message):
        check_param_files(default_param_files(), overrides)
    both = {**overrides, 'watchdog': {**overrides.get('watchdog', {}),
                                      'command.control_rate_hz': 100.0}}
    if 'control_rate_hz' in overrides.get('chunk_executor', {}):
        check_param_files(default_param_files(), both)   # the same rate: accepted


def test_by_default_the_watchdog_checks_at_the_models_rate(ros_context, edited_model):
    """command.control_rate_hz 0 (the default and config/watchdog.yaml) follows the model
    manifest, as the executor's control_rate_hz 0 does: a 30 Hz model moves both."""
    def at_30_hz(manifest):
        manifest['control_rate_hz'] = 30.0

    model = str(edited_model(at_30_hz))
    wd = WatchdogNode(context=ros_context, parameter_overrides=[
        Parameter('model_dir', value=model)])
    try:
        assert wd.config.command.control_rate_hz == 30.0 and wd.period_s == pytest.approx(1 / 30)
    finally:
        wd.destroy_node()
    from vla_edge.nodes.bringup import check_param_files, default_param_files

    check_param_files(default_param_files(), {'chunk_executor': {'model_dir': model},
                                              'watchdog': {'model_dir': model}})
    with pytest.raises(ParameterError, match='ticks at 30 Hz but the watchdog checks commands '
                                             'at 50 Hz'):
        check_param_files(default_param_files(), {'chunk_executor': {'model_dir': model}})
    with pytest.raises(ParameterError, match="command.control_rate_hz is 0 .* cannot be read"):
        WatchdogNode(context=ros_context, parameter_overrides=[
            Parameter('model_dir', value='/nonexistent/model')])


def test_the_robots_joint_names_must_match_the_command_dimensions(ros_context):
    with pytest.raises(ParameterError, match=r"'joint_names' = \['vx', 'vy'\] must be "
                                             'command.command_dim = 3'):
        WatchdogNode(context=ros_context,
                     parameter_overrides=[Parameter('joint_names', value=['vx', 'vy'])])


@pytest.mark.parametrize('period_s, wrong', [(0.01, True), (0.02, False)])
def test_a_command_raw_rate_other_than_the_configured_one_is_named(harness, period_s, wrong):
    """Under ros2 launch nothing ties the watchdog's rate to the executor's: measured instead."""
    h = harness()              # command.control_rate_hz 0: the reference manifest's 50 Hz
    raw = h.io.create_publisher(Float64MultiArray, 'command_raw', 10)
    assert wait_until(lambda: h.wd.count_subscribers('command_raw') or
                      raw.get_subscription_count(), 5.0)
    t0 = time.monotonic()
    for k in range(160):
        raw.publish(Float64MultiArray(data=[0.0, 0.0, -1.0]))
        time.sleep(max(0.0, t0 + (k + 1) * period_s - time.monotonic()))
    with h.wd._lock:
        h.wd._check_command_rate(h.wd.now_s())
    if wrong:
        assert re.match(r'command_raw arrives at (9\d|10\d) Hz but the watchdog checks at 50 Hz '
                        r"\(command.control_rate_hz 0: the model manifest's\)",
                        h.wd.command_rate_problem), h.wd.command_rate_problem
    else:
        assert h.wd.command_rate_problem is None
