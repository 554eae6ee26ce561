"""vla_node plans from the robot state of its frame's instant (`state_pairing: frame_time`), not
the newest state, which is ahead of the image while the robot moves; the real runtime plans, and
a spy (conftest `planned`) records the state it was given."""
import time

import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState

from vla_edge.core.polling import wait_until
from vla_edge.nodes.messages import s_to_stamp
from vla_edge.nodes.vla_node import VlaNode


def _state(x, stamp_s=None):
    msg = JointState(name=['x', 'y', 'gripper'], position=[x, 0.5, 1.0], velocity=[0.3, 0.0, 0.0])
    if stamp_s is not None:
        msg.header.stamp = s_to_stamp(stamp_s)
    return msg


def _plan_from_frame(node, frame_s, published):
    from trajectory_msgs.msg import JointTrajectory

    frame = Image(height=128, width=128, encoding='rgb8', step=384, data=bytes(128 * 384))
    frame.header.stamp = s_to_stamp(frame_s)
    node.on_frame(frame)
    assert wait_until(lambda: node.frames_encoded == 1, 5.0)
    node.on_request(JointTrajectory())
    assert wait_until(lambda: len(published) == 1, 5.0), 'no chunk'


def _node(ctx, runtime, **params):
    node = VlaNode(context=ctx, runtime=runtime,
                   parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    published = []
    node.chunk_pub.publish = published.append
    return node, published


def _moving_robot(node, now):
    """joint_states at 50 Hz over the last 0.3 s: x = 0.1 at now - 0.3 s ... 0.4 at now."""
    for k in range(16):
        t = now - 0.3 + k * 0.02
        node.on_state(_state(round(0.1 + k * 0.02, 4), t))


def test_the_state_stamped_nearest_to_the_frame_is_planned_from(
        ros_context, reference_runtime, planned):
    node, published = _node(ros_context, reference_runtime)
    try:
        now = node.now_s()
        _moving_robot(node, now)
        _plan_from_frame(node, now - 0.195, published)      # nearest state: now - 0.2 s
        assert planned[-1].state[0] == pytest.approx(0.2)
        assert node.state_offsets_s[-1] == pytest.approx(-0.005, abs=1e-6)
        assert 'state_offset' not in node._errors
    finally:
        node.destroy_node()


@pytest.mark.parametrize('params, frame_s', [
    ({'state_pairing': 'newest'}, None),   # asked for: the frame 0.195 s old
    ({}, 1000.0),                          # 1000 s off the node's clock: no matching by time
], ids=['state_pairing_newest', 'frame_on_another_clock'])
def test_the_newest_state_when_asked_or_when_the_frame_is_on_another_clock(
        ros_context, reference_runtime, planned, params, frame_s):
    node, published = _node(ros_context, reference_runtime, **params)
    try:
        now = node.now_s()
        _moving_robot(node, now)
        _plan_from_frame(node, now - 0.195 if frame_s is None else frame_s, published)
        assert planned[-1].state[0] == pytest.approx(0.4)
        assert not node.state_offsets_s          # no pairing by time was made
    finally:
        node.destroy_node()


def test_unstamped_states_are_placed_at_their_arrival(
        ros_context, reference_runtime, planned):
    node, published = _node(ros_context, reference_runtime)
    try:
        node.on_state(_state(0.1))
        time.sleep(0.3)
        node.on_state(_state(0.4))
        now = node.now_s()
        _plan_from_frame(node, now - 0.3, published)
        assert planned[-1].state[0] == pytest.approx(0.1)
    finally:
        node.destroy_node()


def test_a_state_far_from_the_frame_is_used_and_reported(
        ros_context, reference_runtime, planned):
    """joint_states stalled 0.5 s before the frame: the nearest state is still the best there is,
    and the node says so (errors_state_offset in /diagnostics)."""
    node, published = _node(ros_context, reference_runtime, state_max_offset_s=0.1)
    try:
        now = node.now_s()
        node.on_state(_state(0.25, now - 0.5))
        _plan_from_frame(node, now, published)
        assert planned[-1].state[0] == pytest.approx(0.25)
        assert node._errors['state_offset'] == 1
        assert node.state_offsets_s[-1] == pytest.approx(-0.5, abs=1e-6)
    finally:
        node.destroy_node()


def test_a_joint_states_clock_a_little_off_is_reported(ros_context, reference_runtime):
    """Stamps 0.3 s behind the node's clock pass the 1 s same-clock test, so they are used as
    stamped; their age on arrival gives the skew away (errors_state_clock, /diagnostics)."""
    node, _ = _node(ros_context, reference_runtime, state_max_offset_s=0.1)
    try:
        now = node.now_s()
        node.on_state(_state(0.1, now - 0.3))
        assert node._errors['state_clock'] == 1
        assert node.state_arrival_ages_s[-1] == pytest.approx(0.3, abs=0.05)
        node.on_state(_state(0.1, node.now_s()))
        assert node._errors['state_clock'] == 1   # an on-time state is not
    finally:
        node.destroy_node()


def test_state_timing_is_in_the_diagnostics(ros_context, reference_runtime, planned):
    from diagnostic_msgs.msg import DiagnosticArray

    node, published = _node(ros_context, reference_runtime)
    sent = []
    node.diag_pub.publish = sent.append
    try:
        now = node.now_s()
        _moving_robot(node, now)
        _plan_from_frame(node, now - 0.195, published)
        node.publish_diagnostics()
        assert isinstance(sent[-1], DiagnosticArray)
        values = {kv.key: kv.value for kv in sent[-1].status[0].values}
        assert float(values['state_frame_offset_max_ms']) == pytest.approx(5.0, abs=0.01)
        assert float(values['state_arrival_age_p50_ms']) >= 0.0
        assert values['state_history_restarts'] == '0'
    finally:
        node.destroy_node()
