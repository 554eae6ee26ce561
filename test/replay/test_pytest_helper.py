"""The replay-test helper end to end: a golden bag is played into an in-process system under
test, its outputs are recorded and compared; an unchanged system passes, a changed one fails."""
import json

import numpy as np
import pytest
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_edge.nodes.messages import chunk_to_trajectory, s_to_stamp, stamp_to_s
from vla_edge.replay.player import PlayerOptions
from vla_edge.replay.pytest_helper import open_replay_env, write_bag

RATE, H, NAMES = 50.0, 5, ['vx', 'vy']
T0 = 1_700_000_000.0


def policy(position, gain):
    """The 'model': a chunk of H actions from one observation."""
    return gain * (np.asarray(position)[None, :] + 0.01 * np.arange(H)[:, None])


class TinyPolicyNode(Node):
    """System under test: observation in, action_chunk + command_raw out."""

    def __init__(self, context, gain=1.0):
        super().__init__('tiny_policy', context=context)
        self.gain = gain
        self.chunk_pub = self.create_publisher(JointTrajectory, 'action_chunk', 10)
        self.command_pub = self.create_publisher(Float64MultiArray, 'command_raw', 10)
        self.create_subscription(JointState, 'observation', self.on_observation, 10)

    def on_observation(self, msg):
        actions = policy(msg.position, self.gain)
        self.chunk_pub.publish(chunk_to_trajectory(actions, stamp_to_s(msg.header.stamp), RATE,
                                                   NAMES))
        self.command_pub.publish(Float64MultiArray(data=actions[0].tolist()))


@pytest.fixture(scope='module')
def golden(tmp_path_factory):
    """Inputs at 20 Hz and the outputs the unchanged system gave 2 ms after each."""
    msgs = []
    for i in range(30):
        t = T0 + 0.05 * i
        position = [np.sin(0.3 * i), np.cos(0.3 * i)]
        obs = JointState(name=NAMES, position=position)
        obs.header.stamp = s_to_stamp(t)
        actions = policy(position, 1.0)
        msgs += [('/observation', obs, int(t * 1e9)),
                 ('/action_chunk', chunk_to_trajectory(actions, t, RATE, NAMES),
                  int((t + 0.002) * 1e9)),
                 ('/command_raw', Float64MultiArray(data=actions[0].tolist()),
                  int((t + 0.002) * 1e9) + 1)]
    path = tmp_path_factory.mktemp('golden') / 'bag'
    write_bag(path, msgs)
    return path


def test_unchanged_system_passes_and_artefacts_are_written(golden, tmp_path):
    with open_replay_env(tmp_path, domain_id=211) as env:
        result = env.replay_and_compare(
            golden, system=lambda env: TinyPolicyNode(env.context))
    assert result.passed, result.report()
    assert result.metrics['chunks']['matched'] == 30
    assert result.metrics['chunk_error']['max_abs'] < 1e-12
    assert json.loads((tmp_path / 'result.json').read_text())['passed'] is True
    assert 'PASSED' in (tmp_path / 'report.txt').read_text()
    assert (tmp_path / 'overlay.png').stat().st_size > 0


def test_changed_system_fails_with_the_reason(golden, tmp_path):
    with open_replay_env(tmp_path, domain_id=212) as env:
        result = env.replay_and_compare(
            golden, system=lambda env: TinyPolicyNode(env.context, gain=1.05))
    assert not result.passed
    assert any(f.startswith('chunk max abs error') for f in result.failures), result.report()
    assert result.metrics['chunks']['matched'] == 30       # same observations, other actions


class SimTimePolicyNode(TinyPolicyNode):
    """The same SUT on sim time (lockstep publishes /clock)."""

    def __init__(self, context):
        from rclpy.parameter import Parameter

        super().__init__(context)
        self.set_parameters([Parameter('use_sim_time', value=True)])


def test_lockstep_replays_answer_every_input_and_match_the_golden_exactly(golden, tmp_path):
    from vla_edge.replay.bag_reader import read_messages
    from vla_edge.replay.lockstep import LockstepOptions

    runs = []
    with open_replay_env(tmp_path, domain_id=213) as env:
        for _ in range(2):
            result = env.replay_and_compare(
                golden, system=lambda env: SimTimePolicyNode(env.context),
                lockstep=LockstepOptions(trigger_topics=('/observation',), settle_s=0.002))
            assert result.passed, result.report()
            assert result.metrics['chunks']['matched'] == 30
            assert result.metrics['chunk_error']['max_abs'] == 0.0
            runs.append(sorted(tmp_path.glob('run_*'))[-1])
        with pytest.raises(ValueError, match='not both'):
            env.replay(golden, system=None, options=PlayerOptions(), lockstep=LockstepOptions())
    first, second = ([(m.topic, m.timestamp_ns, m.data) for m in read_messages(r)] for r in runs)
    assert first == second                        # outputs and their clock stamps, bit for bit
    chunks = [t for topic, t, _ in first if topic == '/action_chunk']
    observations = [m.timestamp_ns for m in read_messages(golden) if m.topic == '/observation']
    assert chunks == observations                 # answered at the frozen clock of each input
