"""vla_node encodes a frame only when the scene changed (`key_frame_min_change`): an unchanged
frame reuses the last embedding, re-stamped with its own time; the real runtime encodes."""
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from vla_edge.core.polling import wait_until
from vla_edge.nodes.messages import request_id, s_to_stamp
from vla_edge.nodes.vla_node import VlaNode, deterministic_seed


def _pixels(level: int) -> np.ndarray:
    return np.full((128, 128, 3), level, np.uint8)


def _frame(pixels, stamp_s: float) -> Image:
    pixels = _pixels(pixels) if isinstance(pixels, int) else pixels
    msg = Image(height=128, width=128, encoding='rgb8', step=384, data=pixels.tobytes())
    msg.header.stamp = s_to_stamp(stamp_s)
    return msg


def _robot_state(node):
    node.on_state(JointState(name=['x', 'y', 'gripper'], position=[0.5, 0.5, 1.0],
                             velocity=[0.0, 0.0, 0.0]))


def _node(ctx, runtime, **params):
    node = VlaNode(context=ctx, runtime=runtime,
                   parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    node.chunk_pub.publish = lambda data: None   # chunk_records keeps what was published
    return node


def _show(node, frames):
    """One frame at a time, each processed by the vision thread before the next (it keeps only
    the newest, so a burst would be thinned before the gate saw it)."""
    def seen() -> int:
        return node.frames_encoded + node.frames_skipped_unchanged

    for k, msg in enumerate(frames, start=seen() + 1):
        node.on_frame(msg)
        assert wait_until(lambda k=k: seen() >= k, 5.0)


def test_an_unchanged_scene_is_encoded_once_and_chunks_carry_the_newest_frames_time(
        ros_context, reference_runtime):
    node = _node(ros_context, reference_runtime)
    try:
        now = node.now_s()
        stamps = [now - 0.25 + 0.05 * k for k in range(5)]   # within the 0.3 s interval
        _robot_state(node)
        _show(node, [_frame(120, s) for s in stamps])
        assert (node.frames_encoded, node.frames_skipped_unchanged) == (1, 4)
        node.on_request(JointTrajectory())
        assert wait_until(lambda: len(node.chunk_records) == 1, 5.0), 'no chunk'
        assert node.chunk_records[0][0] == pytest.approx(stamps[-1], abs=1e-6)
        _show(node, [_frame(160, stamps[-1] + 0.05)])   # the scene changed
        assert (node.frames_encoded, node.frames_skipped_unchanged) == (2, 4)
        sent = []
        node.diag_pub.publish = sent.append
        node.publish_diagnostics()
        values = {kv.key: kv.value for kv in sent[0].status[0].values}
        assert values['frames_skipped_unchanged'] == '4'
    finally:
        node.destroy_node()


def test_a_skipped_frame_is_planned_from_the_anchors_embedding_at_its_own_time(
        ros_context, reference_runtime, planned):
    node = _node(ros_context, reference_runtime, noise_seed=3)
    try:
        now = node.now_s()
        _robot_state(node)
        _show(node, [_frame(90, now - 0.2), _frame(90, now - 0.1)])
        assert node.frames_skipped_unchanged == 1
        assert node._visual_frame[0] == 2   # the skipped frame's receive index, not the anchor's
        node.on_request(JointTrajectory())
        assert wait_until(lambda: len(planned) == 1, 5.0), 'no chunk'
        visual, seed = planned[0].visual, planned[0].seed
        anchor = reference_runtime.encode_image(_pixels(90), now - 0.2)
        assert np.array_equal(visual.tokens, anchor.tokens)
        assert visual.stamp_s == pytest.approx(now - 0.1, abs=1e-6)
        assert seed == deterministic_seed(3, visual.stamp_s)   # keyed to the frame's own time
    finally:
        node.destroy_node()


@pytest.mark.parametrize('case', ['received_before', 'stamped_before'])
def test_after_a_reset_a_frame_is_not_skipped_against_an_anchor_from_before_it(
        ros_context, reference_runtime, planned, case):
    """A chunk after an executor reset must see pixels taken after it: a frame below the
    threshold is still encoded when the anchor predates the reset, by either of vla_node's
    freshness rules. received_before: the anchor came in before the reset, and the frames are
    stamped on another clock, so only the receive order can tell. stamped_before: the anchor came
    in after the reset but was taken before it."""
    node = _node(ros_context, reference_runtime, key_frame_min_change=12.0)
    try:
        now = node.now_s()
        base = now - 1000.0 if case == 'received_before' else now
        _robot_state(node)
        first = JointTrajectory()
        first.header.frame_id = request_id(1, 0)
        node.on_request(first)
        if case == 'received_before':
            _show(node, [_frame(90, base - 0.3)])
        reset = JointTrajectory()   # a new epoch: the executor reset at now - 0.2
        reset.header.frame_id = request_id(2, 0)
        reset.header.stamp = s_to_stamp(now - 0.2)
        node.on_request(reset)
        if case == 'stamped_before':
            _show(node, [_frame(90, base - 0.3)])
        after = _pixels(90)
        after[0:3, 0:3, 0] += 20    # one cell's red mean moves by 11.25 levels: below 12
        _show(node, [_frame(after, base - 0.1)])
        assert (node.frames_encoded, node.frames_skipped_unchanged) == (2, 0)
        expected = reference_runtime.encode_image(after).tokens
        assert not np.array_equal(expected, reference_runtime.encode_image(_pixels(90)).tokens)

        def planned_after():
            return [c.visual for c in planned if abs(c.visual.stamp_s - (base - 0.1)) < 1e-6]

        assert wait_until(lambda: planned_after(), 5.0), 'no chunk after the reset'
        assert np.array_equal(planned_after()[0].tokens, expected)
    finally:
        node.destroy_node()


def test_zero_encodes_every_frame(ros_context, reference_runtime):
    node = _node(ros_context, reference_runtime, key_frame_min_change=0.0)
    try:
        now = node.now_s()
        _show(node, [_frame(120, now - 0.3 + 0.05 * k) for k in range(3)])
        assert (node.frames_encoded, node.frames_skipped_unchanged) == (3, 0)
    finally:
        node.destroy_node()


def test_an_out_of_range_threshold_is_refused_by_name(ros_context, reference_runtime):
    with pytest.raises(Exception, match='key_frame_min_change'):
        _node(ros_context, reference_runtime, key_frame_min_change=300.0)
