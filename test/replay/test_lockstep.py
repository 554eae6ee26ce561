"""Lockstep replay over real DDS with a tiny system under test (SUT): each frame is seen after the
state recorded before it and answered before anything else goes out, the SUT's timer ticks once
per period on /clock, outputs carry the clock they arrived at; a silent SUT is a clear error."""
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_edge.replay.bag_reader import read_messages
from vla_edge.replay.bag_writer import BagWriter, write_bag
from vla_edge.replay.lockstep import LockstepOptions, LockstepPlayer, NoAnswerError

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def stamped(msg, t_ns):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
    return msg


def inputs_bag(path, seconds=0.5):
    """Frames at 30 Hz, states at 50 Hz (position = their index), interleaved, no ties."""
    msgs = [('/joint_states', stamped(JointState(name=['x'], position=[float(i)]), t), t)
            for i, t in enumerate(range(T0 + 7 * MS, T0 + int(seconds * 1e9), 20 * MS))]
    msgs += [('/camera/image_raw', stamped(Image(height=1, width=1, encoding='mono8', step=1,
                                                 data=bytes(1)), t), t)
             for t in range(T0, T0 + int(seconds * 1e9), 33 * MS)]
    write_bag(path, sorted(msgs, key=lambda m: m[2]))
    return msgs


class EchoPolicy(Node):
    """Answers every frame with a chunk stamped with it, noting the newest state it had; ticks
    at 50 Hz on sim time."""

    def __init__(self, context):
        super().__init__('echo_policy', context=context,
                         parameter_overrides=[Parameter('use_sim_time', value=True)])
        self.state, self.seen, self.ticks = None, [], []   # ticks: (sim time ns, state then)
        self.chunk_pub = self.create_publisher(JointTrajectory, 'action_chunk', 10)
        self.tick_pub = self.create_publisher(Float64MultiArray, 'command_raw', 10)
        self.create_subscription(JointState, 'joint_states',
                                 lambda m: setattr(self, 'state', m.position[0]), 10)
        self.create_subscription(Image, 'camera/image_raw', self.on_frame,
                                 qos_profile_sensor_data)
        self.create_timer(0.02, self.on_tick)

    def on_tick(self):
        self.ticks.append((self.get_clock().now().nanoseconds, self.state))
        self.tick_pub.publish(Float64MultiArray(data=[1.0]))

    def on_frame(self, msg):
        self.seen.append(self.state)
        chunk = JointTrajectory()
        chunk.header.stamp = msg.header.stamp
        self.chunk_pub.publish(chunk)


def test_frames_see_the_state_before_them_and_outputs_carry_the_lockstep_clock(ros, tmp_path):
    msgs = inputs_bag(tmp_path / 'bag')
    states = sorted((t, m.position[0]) for topic, m, t in msgs if topic == '/joint_states')
    frames = sorted(t for topic, _, t in msgs if topic == '/camera/image_raw')
    with ros.domain(224) as ctx:
        sut = EchoPolicy(ctx)
        writer = BagWriter(tmp_path / 'run').open()
        player = LockstepPlayer(tmp_path / 'bag', LockstepOptions(
            tick_period_s=0.02, record_topics=('/action_chunk', '/command_raw'),
            settle_s=0.005), record=writer, context=ctx)
        with ros.spinning(ctx, sut, player):
            assert ros.wait_for(lambda: all(player.subscriber_counts().values()))
            stats = player.run()
        writer.close()
    ready = [t for t in frames if t > states[0][0]]           # frames before any state: skipped
    assert stats.skipped_before_ready == len(frames) - len(ready)
    assert stats.answered == len(ready) and stats.timed_out == 0 and stats.missed_ticks == 0
    assert sut.seen == [max(s for ts, s in states if ts < t) for t in ready]
    out = read_messages(tmp_path / 'run')
    chunk_times = [m.timestamp_ns for m in out if m.topic == '/action_chunk']
    assert chunk_times == ready                  # recorded at the frame's bag time, frozen
    ticks = [m.timestamp_ns for m in out if m.topic == '/command_raw']
    assert all(t % (20 * MS) == 0 for t in ticks[1:])          # one per period, on the grid
    assert len(ticks) == 1 + (states[-1][0] // (20 * MS) - states[0][0] // (20 * MS))
    # every control tick saw the newest state played before it (inputs settle before a tick)
    after_first_state = [(t, s) for t, s in sut.ticks if t > states[0][0]]
    assert after_first_state
    assert [s for _, s in after_first_state] == \
        [max(s for ts, s in states if ts < t) for t, _ in after_first_state]


def test_a_system_that_never_answers_is_a_clear_error(ros, tmp_path):
    inputs_bag(tmp_path / 'bag')
    with ros.domain(225) as ctx:
        player = LockstepPlayer(tmp_path / 'bag', LockstepOptions(
            first_response_timeout_s=0.05, response_timeout_s=0.05, discovery_timeout_s=0.1,
            max_unanswered_in_a_row=3), context=ctx)
        with ros.spinning(ctx, player), pytest.raises(NoAnswerError, match='last 3 frames'):
            player.run()
