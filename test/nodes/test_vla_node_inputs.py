"""vla_node against inputs that must not take the task or the plan with them: an unusable
instruction, joint states naming a joint twice, a committed prefix at another rate or far from
its frame, and several different problems at once (each is logged)."""
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.polling import wait_until
from vla_edge.nodes.messages import chunk_to_trajectory, request_id, s_to_stamp
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.vla_node import VlaNode

NAMES = ['vx', 'vy', 'grip']


def _state():
    return JointState(name=['x', 'y', 'gripper'], position=[0.5, 0.5, 1.0],
                      velocity=[0.0, 0.0, 0.0])


def _frame(stamp_s):
    msg = Image(height=128, width=128, encoding='rgb8', step=384, data=bytes(128 * 384))
    msg.header.stamp = s_to_stamp(stamp_s)
    return msg


def _ready_node(ctx, runtime):
    node = VlaNode(context=ctx, runtime=runtime)
    node.chunk_pub.publish = lambda data: None      # the chunk itself is not under test here
    node.on_state(_state())
    node.on_frame(_frame(10.0))
    assert wait_until(lambda: node.frames_encoded == 1, 5.0)
    return node


@pytest.mark.parametrize('text', ['', '   ', 'x' * 5000, '\u200b\u200b', '\x07\x1b'])
def test_an_unusable_instruction_does_not_replace_the_task(ros_context, reference_runtime, text):
    node = VlaNode(context=ros_context, runtime=reference_runtime)
    try:
        node.on_instruction(String(data='put the tea bag in the mug'))
        node.on_instruction(String(data=text))
        assert node._instruction == 'put the tea bag in the mug'
        assert node._errors == {'instruction': 1}
        node.on_instruction(String(data='put the red block in the bowl'))
        assert node._instruction == 'put the red block in the bowl'
    finally:
        node.destroy_node()


def test_joint_states_naming_a_joint_twice_are_refused(ros_context, reference_runtime):
    node = VlaNode(context=ros_context, runtime=reference_runtime)
    try:
        node.on_state(JointState(name=['x', 'y', 'gripper', 'x'], position=[0.5, 0.5, 1.0, 9.0],
                                 velocity=[0.0] * 4))
        assert len(node._states) == 0 and node._errors['state'] == 1
    finally:
        node.destroy_node()


def test_state_joint_parameters_must_name_distinct_joints(ros_context, reference_runtime):
    with pytest.raises(ParameterError, match="'state_position_joints' .* must be distinct"):
        VlaNode(context=ros_context, runtime=reference_runtime, parameter_overrides=[
            Parameter('state_position_joints', value=['x', 'x', 'gripper'])])


@pytest.mark.parametrize('as_bytes', [False, True], ids=['message', 'raw_bytes'])
def test_a_prefix_from_a_100hz_executor_is_sampled_at_the_models_50hz(
        ros_context, reference_runtime, planned, as_bytes):
    """Also as the serialized bytes the raw chunk_request subscription hands over."""
    node = _ready_node(ros_context, reference_runtime)
    try:
        committed = np.stack([np.arange(20) / 100.0, np.zeros(20), np.ones(20)], axis=1)
        request = chunk_to_trajectory(committed, 10.0, 100.0, NAMES)   # at the frame's time
        request.header.frame_id = request_id(1, 1)
        node.on_request(serialize_message(request) if as_bytes else request)
        assert wait_until(lambda: len(planned) == 1, 5.0)
        prefix = planned[0].prefix
        assert prefix.shape == (10, 3)                  # 0.2 s at 50 Hz
        np.testing.assert_allclose(prefix[:, 0], np.arange(10) / 50.0)
    finally:
        node.destroy_node()


def test_request_bytes_that_are_no_trajectory_are_refused_and_the_next_is_served(
        ros_context, reference_runtime, planned):
    node = _ready_node(ros_context, reference_runtime)
    try:
        node.on_request(b'\x00\x01\x00\x00\xff')
        assert node._errors == {'request': 1} and node._pending_request is None
        request = chunk_to_trajectory(np.zeros((0, 3)), 10.0, 50.0, NAMES)
        request.header.frame_id = request_id(1, 1)
        node.on_request(serialize_message(request))
        assert wait_until(lambda: node._chunks == 1, 5.0)
        assert planned[0].prefix is None
    finally:
        node.destroy_node()


def test_a_prefix_starting_beyond_the_chunk_is_not_used_and_the_chunk_still_comes(
        ros_context, reference_runtime, planned):
    """A request stamped 1e5 s after the frame once made a 5-million-row prefix (GBs)."""
    node = _ready_node(ros_context, reference_runtime)
    try:
        request = chunk_to_trajectory(np.ones((5, 3)), 10.0 + 1e5, 50.0, NAMES)
        request.header.frame_id = request_id(1, 1)
        node.on_request(request)
        assert wait_until(lambda: len(planned) == 1, 5.0)
        assert planned[0].prefix is None and node._errors == {'prefix': 1}
        assert wait_until(lambda: node._chunks == 1, 5.0)
    finally:
        node.destroy_node()


@pytest.mark.parametrize('bad', [np.nan, 1e30, 1e308])
def test_an_unusable_prefix_is_not_used_and_the_chunk_still_comes(ros_context, reference_runtime,
                                                                  planned, bad):
    """As for any other unusable prefix; a NaN used to drop the whole reply, leaving the
    executor to wait out its request timeout. A finite 1e30 came back in the published chunk (the
    expert keeps a prefix as given), and 1e308 overflowed float32 and dropped the reply."""
    node = _ready_node(ros_context, reference_runtime)
    try:
        committed = np.ones((5, 3))
        committed[2, 1] = bad
        request = chunk_to_trajectory(committed, 10.0, 50.0, NAMES)
        request.header.frame_id = request_id(1, 1)
        node.on_request(request)
        assert wait_until(lambda: len(planned) == 1, 5.0)
        assert planned[0].prefix is None and node._errors == {'prefix': 1}
        assert wait_until(lambda: node._chunks == 1, 5.0)
    finally:
        node.destroy_node()


class _Log:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda text, **kw: self.lines.append((level, text))


def test_each_kind_of_input_problem_is_logged_not_just_the_first(ros_context,
                                                                  reference_runtime):
    node = VlaNode(context=ros_context, runtime=reference_runtime)
    log = _Log()
    node.get_logger = lambda: log
    try:
        bad = Image(height=4, width=4, encoding='yuv422', step=8, data=bytes(32))
        bad.header.stamp = s_to_stamp(time.time())      # on the node's clock: no clock warning
        node.on_frame(bad)
        assert wait_until(lambda: node._errors.get('frame') == 1, 5.0)
        for _ in range(3):
            node.on_state(JointState(name=['x', 'y', 'gripper'], position=[0.5, np.nan, 1.0],
                                     velocity=[0.0] * 3))
        node.on_instruction(String(data=''))
        warnings = [text for level, text in log.lines if level == 'warning']
        assert len(warnings) == 3, warnings               # one per kind, repeats throttled
        assert 'yuv422' in warnings[0] and 'NaN' in warnings[1] and 'empty' in warnings[2]
        assert node._errors == {'frame': 1, 'state': 3, 'instruction': 1}
    finally:
        node.destroy_node()


def test_a_model_without_action_names_publishes_unnamed_chunks(ros_context, edited_model):
    """The executor takes an unnamed chunk's columns in order (names are optional in the
    manifest); '0', '1', '2' would match no executor's joint_names and every chunk be refused."""
    from rclpy.serialization import deserialize_message
    from trajectory_msgs.msg import JointTrajectory

    from vla_edge.core.runtime import PolicyRuntime

    folder = edited_model(lambda manifest: manifest.pop('action_names'))
    node = VlaNode(context=ros_context, runtime=PolicyRuntime(folder))
    published = []
    node.chunk_pub.publish = lambda data: published.append(deserialize_message(data,
                                                                               JointTrajectory))
    try:
        node.on_state(_state())
        node.on_frame(_frame(10.0))
        request = chunk_to_trajectory(np.zeros((5, 3)), 10.0, 50.0, NAMES)   # named prefix
        request.header.frame_id = request_id(1, 1)
        node.on_request(request)
        assert wait_until(lambda: published, 5.0)
        assert list(published[0].joint_names) == [] and len(published[0].points) == 50
        assert not node._errors                       # the named prefix was used, in order
    finally:
        node.destroy_node()


def test_the_emulated_latency_wait_ends_when_the_clock_jumps_back(ros_context,
                                                                   reference_runtime):
    """A sim reset moves /clock back during a plan: waiting for the old deadline could take
    minutes of the new episode."""
    node = VlaNode(context=ros_context, runtime=reference_runtime)
    try:
        times = iter([100.0, 100.1, 3.0])
        node.now_s = lambda: next(times)
        assert node._wait_until(100.3) is False       # returned at the jump, not at 100.3
    finally:
        node.destroy_node()


def test_serving_covers_a_plan_and_its_emulated_latency(ros_context, reference_runtime):
    """`serving` is what the demo waits on so both modes start an episode from an idle policy:
    True from the moment a request is taken until its chunk is out, emulated latency included."""
    node = VlaNode(context=ros_context, runtime=reference_runtime,
                   parameter_overrides=[Parameter('emulated_latency_s', value=0.3)])
    try:
        node.chunk_pub.publish = lambda data: None
        node.on_state(_state())
        node.on_frame(_frame(10.0))
        assert wait_until(lambda: node.frames_encoded == 1, 5.0)
        assert not node.serving
        request = JointTrajectory()
        request.header.stamp = s_to_stamp(10.0)
        request.header.frame_id = request_id(1, 1)
        t0 = time.monotonic()
        node.on_request(request)
        assert wait_until(lambda: node.serving, 2.0, poll_s=0.001)
        assert wait_until(lambda: node._chunks == 1, 5.0, poll_s=0.001)
        assert time.monotonic() - t0 >= 0.3
        assert wait_until(lambda: not node.serving, 1.0, poll_s=0.001)
    finally:
        node.destroy_node()


def test_a_node_destroyed_during_a_plan_ends_it_quietly(ros_context, reference_runtime,
                                                         monkeypatch):
    """A plan outliving destroy_node's 5 s join (a slow board) met a destroyed publisher and was
    counted as a planning failure; now the thread ends without a false report, and the wait that
    timed out is named."""
    import threading

    release = threading.Event()
    real = reference_runtime.plan_chunk

    def slow_plan(*args, **kwargs):
        release.wait(30.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(reference_runtime, 'plan_chunk', slow_plan)
    node = VlaNode(context=ros_context, runtime=reference_runtime)
    log = _Log()
    node.get_logger = lambda: log
    node.on_state(_state())
    node.on_frame(_frame(10.0))
    assert wait_until(lambda: node.frames_encoded == 1, 5.0)
    request = JointTrajectory()
    request.header.stamp = s_to_stamp(10.0)
    request.header.frame_id = request_id(1, 1)
    node.on_request(request)
    assert wait_until(lambda: node.serving, 5.0, poll_s=0.001)
    node.destroy_node()                  # joins for 5 s, then destroys under the running plan
    assert any(level == 'warning' and 'action thread still busy' in text
               for level, text in log.lines), log.lines
    release.set()
    action = next(t for t in node._threads if t.name == 'action')
    action.join(5.0)
    assert not action.is_alive() and 'plan_failure' not in node._errors, node._errors


def test_plan_on_frame_publishes_one_chunk_per_frame_without_requests(ros_context,
                                                                       reference_runtime):
    """The benchmarks' mode: every encoded frame is planned at once, stamped with its time, with
    no request id (nobody asked) and no committed prefix."""
    from rclpy.serialization import deserialize_message

    node = VlaNode(context=ros_context, runtime=reference_runtime,
                   parameter_overrides=[Parameter('plan_on_frame', value=True),
                                        Parameter('key_frame_min_change', value=0.0)])
    sent = []
    node.chunk_pub.publish = sent.append
    try:
        stamps = []
        for k in range(1, 4):   # one at a time: it keeps the newest only
            node.on_state(_state())   # unstamped: placed at its arrival, beside the frame
            stamps.append(node.now_s())
            node.on_frame(_frame(stamps[-1]))
            assert wait_until(lambda k=k: len(sent) == k, 5.0), f'no chunk for frame {k}'
        chunks = [deserialize_message(data, JointTrajectory) for data in sent]
        assert [c.header.stamp for c in chunks] == [s_to_stamp(s) for s in stamps]
        assert all(c.header.frame_id == '' and len(c.points) == 50 for c in chunks)
        assert list(chunks[0].joint_names) == NAMES
        assert node._errors == {}
    finally:
        node.destroy_node()
