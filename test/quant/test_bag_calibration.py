"""Calibration observations from real rosbag2 files: pairing with the state and instruction at or
before each frame, the image encodings a robot records, namespaces, bad input, and the stage
feeds the FP32 runtime records from them."""
import subprocess
import sys

import numpy as np
import pytest

from vla_edge.core.errors import VlaEdgeError
from vla_edge.quant.bag_calibration import (
    DEFAULT_INSTRUCTION,
    BagTopicNames,
    bag_observations,
    resolve_topics,
)
from vla_edge.quant.calibration import QUANTIZED_STAGES, _RecordingSession, collect_bag

MS = 1_000_000


def test_frames_pair_with_the_newest_state_and_instruction_at_or_before_them(sim_bag):
    found = bag_observations(sim_bag.path, progress=False)
    assert found.frames_in_bag == 12
    assert found.frames_before_state == 1            # the frame at 0 ms: no state yet
    assert found.states_rejected == 1 and 'NaN' in found.first_state_error
    assert found.frames_used == found.frames_usable == 11 and found.frames_undecodable == 0
    assert (found.camera_topic, found.state_topic, found.instruction_topic) == (
        '/camera/image_raw', '/joint_states', '/instruction')
    frames = dict(sim_bag.frames)
    for obs in found.observations:
        stamp = sim_bag.stamp_of(obs)
        np.testing.assert_array_equal(obs.image, frames[stamp])   # rgb8: exact
        assert obs.image.dtype == np.uint8 and obs.image.shape == (128, 128, 3)
        # the state of the same stamp counts (written after the frame); the NaN one never does
        np.testing.assert_array_equal(obs.state, sim_bag.expected_state(stamp))
        assert obs.state.dtype == np.float32 and obs.state.shape == (5,)
        want = sim_bag.instruction if stamp >= sim_bag.instruction_ns else DEFAULT_INSTRUCTION
        assert obs.instruction == want
    # the frame at 120 ms came with the NaN state: it keeps the one before (100 ms)
    at_120 = next(o for o in found.observations if sim_bag.ms_of(o) == 120)
    assert sim_bag.states[5] == (sim_bag.t0_ns + 120 * MS, None)
    np.testing.assert_array_equal(at_120.state, sim_bag.states[4][1])
    assert found.default_instruction_frames == 2      # 40 and 80 ms, before the instruction
    assert found.instructions == [DEFAULT_INSTRUCTION, sim_bag.instruction]
    summary = found.to_dict()
    assert summary['frames_used'] == 11 and summary['frames_skipped'] == 1
    assert 'observations' not in summary


@pytest.mark.parametrize('encoding, storage, max_abs_mean', [
    ('bgr8', 'sqlite3', 0.0), ('jpeg', 'mcap', 4.0)])
def test_bgr8_and_compressed_jpeg_frames_decode_to_rgb(tmp_path, sim_bag_writer, encoding,
                                                       storage, max_abs_mean):
    bag = sim_bag_writer(tmp_path / 'bag', frames=4, encoding=encoding, storage=storage)
    found = bag_observations(bag.path, progress=False)
    assert found.camera_topic == ('/camera/image_raw/compressed' if encoding == 'jpeg'
                                  else '/camera/image_raw')
    assert found.frames_used == 3
    frames = dict(bag.frames)
    for obs in found.observations:
        want = frames[bag.stamp_of(obs)].astype(float)
        assert obs.image.shape == want.shape
        assert np.abs(obs.image - want).mean() <= max_abs_mean   # colour order right, not BGR
        assert np.abs(obs.image[..., ::-1] - want).mean() > max_abs_mean + 1.0


def test_frames_are_subsampled_evenly(sim_bag):
    # up to 2 * max_frames usable frames (here 11), exactly evenly
    found = bag_observations(sim_bag.path, max_frames=6, progress=False)
    assert [sim_bag.ms_of(o) for o in found.observations] == [40, 120, 200, 280, 360, 440]
    assert found.frames_usable == 11 and found.frames_used == 6


def test_long_streams_are_thinned_evenly_in_bounded_memory(tmp_path, sim_bag_writer):
    bag = sim_bag_writer(tmp_path / 'bag', frames=40, nan_state=None)
    found = bag_observations(bag.path, max_frames=5, progress=False)
    stamps_ms = [bag.ms_of(o) for o in found.observations]
    # 39 usable frames (40..1560 ms): the whole span, evenly to within one thinning stride
    # (at most 39 / 5 frames)
    stride_ms = 39 / 5 * 40
    assert len(stamps_ms) == 5 and stamps_ms[0] == 40 and stamps_ms[-1] >= 1560 - stride_ms
    gaps = np.diff(stamps_ms)
    assert gaps.max() - gaps.min() <= stride_ms, stamps_ms


def test_namespaced_topics_are_found(tmp_path, sim_bag_writer):
    bag = sim_bag_writer(tmp_path / 'bag', frames=3, namespace='/robot1')
    found = bag_observations(bag.path, progress=False)
    assert (found.camera_topic, found.state_topic, found.instruction_topic) == (
        '/robot1/camera/image_raw', '/robot1/joint_states', '/robot1/instruction')
    assert found.frames_used == 2


def test_a_missing_camera_topic_lists_what_the_bag_has(tmp_path, sim_bag_writer):
    bag = sim_bag_writer(tmp_path / 'bag', frames=3, with_camera=False)
    with pytest.raises(VlaEdgeError) as err:
        bag_observations(bag.path, progress=False)
    text = str(err.value)
    assert 'no camera topic /camera/image_raw or /camera/image_raw/compressed' in text
    assert '/joint_states [sensor_msgs/msg/JointState]' in text
    assert '/instruction [std_msgs/msg/String]' in text


def test_topics_are_resolved_by_name_and_type():
    topics = {'/a/camera/image_raw': 'sensor_msgs/msg/Image',
              '/b/camera/image_raw': 'sensor_msgs/msg/Image',
              '/joint_states': 'std_msgs/msg/String', '/cam': 'sensor_msgs/msg/CompressedImage'}
    with pytest.raises(VlaEdgeError, match='several camera topics'):
        resolve_topics('bag', topics)
    with pytest.raises(VlaEdgeError, match='joint_states topic /joint_states of bag bag has '
                                           'type std_msgs/msg/String'):
        resolve_topics('bag', topics, BagTopicNames(camera='/a/camera/image_raw'))
    topics['/js'] = 'sensor_msgs/msg/JointState'
    assert resolve_topics('bag', topics, BagTopicNames('cam', 'js')) == ('/cam', '/js', None)


def test_undecodable_frames_are_skipped_and_counted(tmp_path, sim_bag_writer):
    bag = sim_bag_writer(tmp_path / 'bag', frames=6, corrupt_frames=(2, 4))
    found = bag_observations(bag.path, progress=False)
    assert found.frames_undecodable == 2 and found.frames_used == 3
    assert 'fewer than height*step' in found.first_frame_error
    bad = sim_bag_writer(tmp_path / 'bad', frames=3, encoding='jpeg', corrupt_frames=(0, 1, 2))
    with pytest.raises(VlaEdgeError, match=r'none of the 3 frames .* 2 could not be decoded '
                                           r'\(first: InputError: could not decode'):
        bag_observations(bad.path, progress=False)


def test_no_bag_is_a_clear_error(tmp_path):
    with pytest.raises(VlaEdgeError, match='no bag at'):
        bag_observations(tmp_path / 'missing', progress=False)


def test_without_rosbags_the_error_names_the_extra(sim_bag):
    # A fresh interpreter where `import rosbags` fails; the quantize verb still imports.
    code = ('import sys; sys.modules["rosbags"] = None\n'
            'import vla_edge.tools.quantize\n'
            'from vla_edge.quant.bag_calibration import bag_observations\n'
            f'bag_observations({str(sim_bag.path)!r}, progress=False)\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    assert "VlaEdgeError: calibration from a rosbag2 needs rosbags: pip install " \
           "'vla_edge[replay]'" in run.stderr


def test_collect_bag_records_every_stage_from_the_bag_frames(sim_bag, reference_runtime):
    rt = reference_runtime
    calib = collect_bag(sim_bag.path, None, runtime=rt, progress=False, max_frames=5)
    n = len(calib.observations)
    assert n == 5 and calib.source == 'bag' and calib.seeds == []
    assert calib.bag['frames_used'] == 5 and calib.bag['bag'] == str(sim_bag.path)
    assert calib.count('vision_encoder') == calib.count('backbone') == n
    assert calib.count('action_expert') == n * rt.denoising_steps
    frames = dict(sim_bag.frames)
    for obs, feed in zip(calib.observations, calib.feeds['vision_encoder'], strict=True):
        np.testing.assert_array_equal(feed['image'][0], frames[sim_bag.stamp_of(obs)])
    state_n = rt._normalize_state(calib.observations[0].state)
    np.testing.assert_allclose(calib.feeds['backbone'][0]['state'][0], state_n)
    # one prefix per chunk, shared by its denoising steps; the noisy actions copied per step
    expert = calib.feeds['action_expert']
    steps = rt.denoising_steps
    assert all(f['prefix_kv'] is expert[0]['prefix_kv'] for f in expert[:steps])
    assert expert[steps]['prefix_kv'] is not expert[0]['prefix_kv']
    assert not np.array_equal(expert[0]['noisy_actions'], expert[1]['noisy_actions'])
    taus = sorted(float(f['tau'][0]) for f in expert[:steps])
    np.testing.assert_allclose(taus, [i / steps for i in range(steps)], rtol=1e-6)
    # the runtime's own sessions are back
    assert not any(isinstance(rt.sessions[s], _RecordingSession) for s in QUANTIZED_STAGES)


def test_a_camera_topic_without_messages_is_a_clear_error(tmp_path):
    from sensor_msgs.msg import JointState

    from vla_edge.replay.bag_writer import BagWriter, serialize_exact

    with BagWriter(tmp_path / 'bag') as bag:
        bag.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        bag.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
        bag.write('/joint_states', 10**18, serialize_exact(JointState(
            name=['x', 'y', 'gripper'], position=[0.1, 0.2, 0.7], velocity=[0.0, 0.0, 0.0])))
    with pytest.raises(VlaEdgeError, match='has no messages on its camera topic '
                                           '/camera/image_raw'):
        bag_observations(tmp_path / 'bag', progress=False)


def test_the_state_vector_follows_the_given_joint_names_and_instruction(sim_bag):
    """A robot names its joints its own way: the same lists as vla_node's parameters."""
    found = bag_observations(sim_bag.path, progress=False, position_joints=('y', 'x'),
                             velocity_joints=('x',), default_instruction='stack the cups')
    for obs in found.observations:
        x, y, _, vx, _ = sim_bag.expected_state(sim_bag.stamp_of(obs))
        np.testing.assert_array_equal(obs.state, np.array([y, x, vx], np.float32))
    assert found.instructions[0] == 'stack the cups'
    with pytest.raises(VlaEdgeError, match="lacks 'shoulder'"):
        bag_observations(sim_bag.path, progress=False, position_joints=('shoulder',))

