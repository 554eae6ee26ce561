"""The sim robot and camera nodes over real DDS: a step advances the world by one control period
at any step rate, commands are checked, a silent controller stops the robot, and episodes are
reported and reset through the node's topics and service."""
import json
import time

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from vla_edge.core.polling import wait_until
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.nodes.sim_nodes import SimCamera, SimRobot, SimSession
from vla_edge.sim.world import SimConfig

LATCHED = QoSProfile(depth=5, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def robot_on(ctx, config=None, **params):
    session = SimSession(config)
    robot = SimRobot(session, context=ctx,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    return session, robot


@pytest.fixture
def spun(ros_context):
    """spun(*nodes): the nodes and a test-side node, each on its own executor thread."""
    made = []

    def start(*nodes):
        io = rclpy.create_node('sim_test_io', context=ros_context)
        made.append((IsolatedExecutors([*nodes, io], ros_context).start(), [*nodes, io]))
        return io

    yield start
    for spin, nodes in made:
        spin.shutdown()
        for node in nodes:
            node.destroy_node()


@pytest.mark.parametrize('rate_hz', [25.0, 50.0, 100.0])
def test_a_step_advances_the_world_by_one_control_period(ros_context, rate_hz):
    """At 100 Hz with the world's 50 Hz period the sim ran 2x faster than the clock."""
    session, robot = robot_on(ros_context, control_rate_hz=rate_hz)
    try:
        robot.start_episode()
        x0 = float(session.env.world.state()[0])
        vx = 1.0 if x0 < 0.5 else -1.0          # towards the middle: no workspace edge
        robot.on_command(Float64MultiArray(data=[vx * 0.5, 0.0, 0.0]))
        for _ in range(10):
            robot.on_step()
        world = session.env.world
        assert world.time_s == pytest.approx(10 / rate_hz)
        moved = float(world.state()[0]) - x0
        # the state is float32
        assert moved == pytest.approx(vx * 0.5 * session.env.config.max_speed * 10 / rate_hz,
                                      abs=1e-6)
    finally:
        robot.destroy_node()


def test_the_rate_of_a_running_sim_cannot_change():
    session = SimSession()
    session.reset(1_000_000)
    session.configure(50.0)   # unchanged: fine
    with pytest.raises(RuntimeError, match='before the first episode'):
        session.configure(100.0)
    with pytest.raises(RuntimeError, match='before the first episode'):
        session.configure(50.0, 'position')


def test_only_three_finite_values_are_a_command(ros_context, spun):
    _, robot = robot_on(ros_context)
    robot.start_episode()
    io = spun(robot)
    pub = io.create_publisher(Float64MultiArray, 'command', 10)
    assert wait_until(lambda: pub.get_subscription_count() >= 1, 5.0)
    for bad in ([0.1, 0.2], [float('nan'), 0.0, 0.0], [0.1, 0.2, 0.3, 0.4], [float('inf'), 0, 0]):
        pub.publish(Float64MultiArray(data=bad))
    pub.publish(Float64MultiArray(data=[0.3, -0.2, 1.0]))
    assert wait_until(lambda: robot.commands_received >= 1, 5.0)
    time.sleep(0.1)
    assert robot.commands_received == 1   # the four bad ones, sent first, were refused
    assert robot._command.tolist() == [0.3, -0.2, 1.0]


def test_a_silent_controller_stops_the_robot(ros_context, spun):
    """Without a command for command_timeout_s the base stops: zero velocity, gripper as it
    was."""
    session, robot = robot_on(ros_context, command_timeout_s=0.1)
    robot.start_episode()
    x0 = float(session.env.world.state()[0])
    vx = 0.3 if x0 < 0.5 else -0.3
    io = spun(robot)
    states = []
    io.create_subscription(JointState, 'joint_states', states.append, 50)
    pub = io.create_publisher(Float64MultiArray, 'command', 10)

    def drive():
        pub.publish(Float64MultiArray(data=[vx, 0.0, 0.0]))
        time.sleep(0.01)
        return states and abs(states[-1].velocity[0]) > 0.0

    assert wait_until(drive, 5.0)
    assert states[-1].velocity[0] == pytest.approx(vx * session.env.config.max_speed)
    aperture = states[-1].position[2]
    stopped_at = time.monotonic()
    assert wait_until(lambda: states[-1].velocity[0] == 0.0, 2.0)
    assert time.monotonic() - stopped_at >= 0.05       # it kept moving until the timeout
    x = states[-1].position[0]
    time.sleep(0.1)
    assert states[-1].position[0] == x and states[-1].position[2] == aperture


def test_episodes_are_reported_and_restarted_by_the_reset_service(ros_context, spun):
    """An episode that ends (here: a 0.1 s time limit) is published on sim/episode; with
    auto_reset off the robot pauses until sim/reset starts the next seed."""
    _, robot = robot_on(ros_context, SimConfig(time_limit_s=0.1), auto_reset=False,
                        first_seed=42)
    robot.start_episode()
    io = spun(robot)
    episodes, instructions = [], []
    io.create_subscription(String, 'sim/episode', lambda m: episodes.append(json.loads(m.data)),
                           LATCHED)
    io.create_subscription(String, 'instruction', lambda m: instructions.append(m.data), LATCHED)
    assert wait_until(lambda: len(episodes) == 1, 5.0)
    first = episodes[0]
    assert first['seed'] == 42 and first['success'] is False
    assert first['time_s'] == pytest.approx(0.1) and first['instruction'] == instructions[0]
    assert first['retries'] == 0    # 0.1 s of holding still: nothing tried, nothing retried
    time.sleep(0.2)
    assert len(episodes) == 1 and not robot.running       # paused, not restarted

    client = io.create_client(Trigger, 'sim/reset')
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done, 5.0)
    assert future.result().success and repr(instructions[-1]) in future.result().message
    assert wait_until(lambda: len(episodes) == 2, 5.0)
    assert episodes[1]['seed'] == 43 and len(instructions) == 2


def test_the_camera_renders_the_shared_world(ros_context, spun):
    session, robot = robot_on(ros_context)
    camera = SimCamera(session, context=ros_context,
                       parameter_overrides=[Parameter('frame_id', value='cam_optical')])
    io = spun(robot, camera)
    frames = []
    io.create_subscription(Image, 'camera/image_raw', frames.append, qos_profile_sensor_data)
    time.sleep(0.2)
    assert not frames             # no episode yet: nothing to render, nothing published
    robot.start_episode()
    assert wait_until(lambda: len(frames) >= 2, 5.0)
    msg = frames[-1]
    size = session.env.config.image_size
    assert (msg.height, msg.width, msg.encoding) == (size, size, 'rgb8')
    assert msg.header.frame_id == 'cam_optical' and msg.header.stamp.sec > 0
    image = np.frombuffer(bytes(msg.data), np.uint8).reshape(size, size, 3)
    assert image.std() > 0.0      # a rendered scene, not a blank buffer


def test_a_frame_carries_the_stamp_of_the_step_whose_state_it_shows(ros_context, spun):
    """The world changes only at robot steps: a frame is stamped like that step's joint_states,
    so pairing by stamp finds the very state the image shows (with its render time as stamp,
    the nearest state was the next step's about half the time)."""
    session, robot = robot_on(ros_context)
    camera = SimCamera(session, context=ros_context)
    io = spun(robot, camera)
    frames, states = [], []
    io.create_subscription(Image, 'camera/image_raw', frames.append, qos_profile_sensor_data)
    io.create_subscription(JointState, 'joint_states', states.append, 100)
    robot.start_episode()
    assert wait_until(lambda: len(frames) >= 12, 5.0)
    state_stamps = {(s.header.stamp.sec, s.header.stamp.nanosec) for s in states}
    frame_stamps = [(f.header.stamp.sec, f.header.stamp.nanosec) for f in frames[2:]]
    assert len(set(frame_stamps)) == len(frame_stamps)   # 30 Hz frames, 50 Hz steps
    assert all(stamp in state_stamps for stamp in frame_stamps)


def test_a_state_is_where_the_robot_is_at_its_stamp_and_a_step_moves_it_after(ros_context):
    """A step reports where the robot is (what the last step reached), stamped now, then moves it
    over the next period, which the next step reports; frames show the reported state. Reported
    after its own move with the step's stamp, a state was a period ahead of its stamp, and the
    executor ran every chunk a tick early (docs/measurements.md, "The sim robot's stamps")."""
    session, robot = robot_on(ros_context, command_interface='position')
    published = []
    robot._publish_state = lambda state, stamp: published.append((np.array(state[:2]), stamp))
    try:
        robot.start_episode()
        robot._deaf_until_s = -1e9
        start = session.env.world.gripper_pos.copy()
        target = start + np.array([0.005, -0.003])       # less than one top-speed step away
        robot.on_command(Float64MultiArray(data=[*target, -1.0]))
        robot.on_step()
        (where, stamp), = published
        assert np.allclose(where, start, atol=1e-6)       # the command has not acted yet
        assert np.allclose(session.env.world.gripper_pos, target)   # it moves the world now
        assert np.allclose(session.shown.gripper_pos, start)       # what the camera shows
        assert session.render_stamped(stamp)[1] == stamp
        robot.on_step()
        where, later = published[-1]
        assert np.allclose(where, target, atol=1e-6) and later.nanoseconds > stamp.nanoseconds
    finally:
        robot.destroy_node()


def test_a_stalled_robot_does_not_make_the_frames_stale(ros_context):
    """Once the next step is overdue the world has not changed since the last one, so the image
    holds now too: it is stamped now, not with the old step time the watchdog would veto."""
    session, robot = robot_on(ros_context)
    try:
        robot.start_episode()
        robot.on_step()
        stepped = session.stepped_at
        period_ns = int(1e9 / session.env.config.control_rate_hz)
        soon = Time(nanoseconds=stepped.nanoseconds + period_ns, clock_type=stepped.clock_type)
        late = Time(nanoseconds=stepped.nanoseconds + 5 * period_ns,
                    clock_type=stepped.clock_type)
        assert session.render_stamped(soon)[1] == stepped
        assert session.render_stamped(late)[1] == late
        session.reset(1_000_001)
        assert session.render_stamped(soon)[1] == soon   # a new episode, no step yet
    finally:
        robot.destroy_node()


def test_a_position_robot_goes_to_its_target_and_stays_when_the_commands_stop(ros_context):
    """command_interface position: [x, y, grip] is where to go (at up to top speed); without a
    fresh command it holds where it is (not at the origin a zeroed command would name)."""
    session, robot = robot_on(ros_context, command_interface='position', command_timeout_s=0.05)
    try:
        robot.start_episode()
        world = session.env.world
        robot.on_command(Float64MultiArray(data=[0.5, 0.5, -1.0]))   # sent before the reset
        assert robot.commands_received == 0                          # was seen: ignored
        robot._deaf_until_s = -1e9
        start = world.gripper_pos.copy()
        target = start + np.array([0.005, -0.003])       # less than one top-speed step away
        robot.on_command(Float64MultiArray(data=[*target, -1.0]))
        robot.on_step()
        assert np.allclose(world.gripper_pos, target)
        robot._command_s = -1e9                           # the command went stale
        for _ in range(5):
            robot.on_step()
        assert np.allclose(world.gripper_pos, target)
    finally:
        robot.destroy_node()
