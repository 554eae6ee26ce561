"""The simulated robot and camera as ROS nodes around one shared sim world.

`SimRobot` steps the world at the control rate with the newest command, publishes `joint_states`,
and reports episodes on `sim/episode` (std_msgs/String, JSON). `SimCamera` renders the same world to
`camera/image_raw` at 30 Hz. They share a `SimSession` (one world, one lock), so they run composed
in one process, the way a simulator's camera and robot plugins share one physics world.

The world changes only at robot steps. A step at time T applies the newest command; the
motion it makes is that of the period after T (a robot's controller moves toward a new target
over the next period, it is not there the instant it gets it), so it is measured at the next
step: each step first publishes where the robot is now (what the last step reached), stamped
now, then steps the world. Published right after the step with the step's own stamp, a state
was one period ahead of its stamp, and the chunk executor, whose rule puts a chunk's action 0 at
its observation's stamp, ran every chunk one tick early: on position targets each new chunk
led the queued one by 1.7 steps at the median, which the merge took up at the robot's top
speed (docs/measurements.md, session 17).

The camera shows the state last published, with its stamp, as a camera driver stamps the
capture time. Stamped with its render time instead, a frame looked up to one control period
younger than its pixels, and pairing it with the joint state nearest its stamp picked the next
step's state about half the time: a state ahead of the image, the pairing that costs most while
the robot moves (README, "Image and state of one instant"). While a step is overdue (the
robot's thread stalled), the world has reached the last step's state and holds it, and frames
show it stamped with their render time, so that a stalled robot does not make the camera look
stale (they are a step ahead of the newest `joint_states` then, until the next step reports
it). The state that completes an episode is judged right after its step and ends the episode
there, one period before a step would report it.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from vla_edge.core.ros_image import rgb_to_image_msg_fields
from vla_edge.nodes.node_lifecycle import destroyed_if_refused
from vla_edge.nodes.params import Spec, declare_all
from vla_edge.nodes.spin import spin_nodes
from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.tasks import PHRASINGS
from vla_edge.sim.world import COMMAND_INTERFACES, SimConfig, World

# A frame is stamped with the last step's time while the next step is at most this many control
# periods late; past that (the robot's thread stalled) with its render time.
STEP_OVERDUE_PERIODS = 1.5
# After a reset, commands are ignored for this many control periods: they were computed before
# the controller could see the new state (a state message and a command each take up to a
# period to cross, and the controller acts on its next tick).
RESET_DEAF_PERIODS = 3


class SimSession:
    """One simulated world shared by the robot and camera nodes; every access holds the lock."""

    def __init__(self, config: SimConfig | None = None):
        self.env = TeaTableEnv(config)
        self.lock = threading.Lock()
        self.seed: int | None = None
        # When the robot last reported its state (the robot's clock), None before the first
        # step of an episode: the stamp of the frames that show that state.
        self.stepped_at: Time | None = None
        # The world as last reported (the live one has moved on by the step after it); None:
        # the live world is the reported one (paused, or no step yet).
        self.shown: World | None = None
        self.listeners: list[Callable[[int, str], None]] = []

    def reset(self, seed: int, phrasing: str = 'canonical') -> str:
        with self.lock:
            self.env.reset(seed, phrasing=phrasing)
            self.seed = seed
            self.stepped_at = None
            self.shown = None
            instruction = self.env.instruction
            # Under the lock: a robot leaving (remove_listener) cannot be called half-destroyed.
            for listener in self.listeners:
                listener(seed, instruction)
        return instruction

    def add_listener(self, listener: Callable[[int, str], None]) -> None:
        """`listener(seed, instruction)` is called after every reset."""
        with self.lock:
            self.listeners.append(listener)

    def remove_listener(self, listener: Callable[[int, str], None]) -> None:
        with self.lock:
            if listener in self.listeners:
                self.listeners.remove(listener)

    def configure(self, rate_hz: float, command_interface: str = 'velocity') -> None:
        """One robot step must advance the world by one control period, or the sim runs off the
        clock (2x fast when stepped at 100 Hz with 50 Hz dynamics); and the world must read
        commands as the robot takes them. The robot node owns both; they are set before the
        first episode."""
        with self.lock:
            config = self.env.config
            if (rate_hz, command_interface) == (config.control_rate_hz,
                                                config.command_interface):
                return
            if self.env.world is not None:
                raise RuntimeError('the control rate and command interface of a running sim '
                                   'cannot change; set them before the first episode')
            self.env = TeaTableEnv(dataclasses.replace(config, control_rate_hz=rate_hz,
                                                       command_interface=command_interface))

    def render(self) -> np.ndarray | None:
        """The image of the state last reported (the live world before any step)."""
        with self.lock:
            return None if self.env.world is None else \
                self.env.image_of(self.shown or self.env.world)

    def render_stamped(self, now: Time) -> tuple[np.ndarray, Time] | None:
        """(the image of the state last reported, its stamp); the live world stamped `now`
        before the episode's first step, or once the next step is overdue (a stalled robot
        thread: the world has reached the last step's state and holds it, so the image holds
        now too, and its frames do not turn stale for the watchdog)."""
        with self.lock:
            if self.env.world is None:
                return None
            world, stamp = self.shown or self.env.world, self.stepped_at
            overdue_ns = STEP_OVERDUE_PERIODS * 1e9 / self.env.config.control_rate_hz
            if stamp is None or (now - stamp).nanoseconds > overdue_ns:
                world, stamp = self.env.world, now
            return self.env.image_of(world), stamp


ROBOT_PARAMETERS = (
    Spec('control_rate_hz', 50.0, 'Dynamics step rate: each step advances the world by '
         '1/rate seconds.', range=(1.0, 1000.0)),
    Spec('command_interface', 'velocity', 'What `command` carries: velocity ([vx, vy, grip], '
         'normalized: 1 = top speed) or position ([x, y, grip] targets in table units, reached '
         'at up to top speed, as a position controller with a speed limit).',
         choices=COMMAND_INTERFACES),
    Spec('command_timeout_s', 0.1, 'Without a fresh command for this long, the robot stops '
         '(zero velocity, or its position as the target; gripper unchanged).',
         range=(0.001, 10.0)),
    Spec('first_seed', 1_000_000, 'Seed of the first episode (held out from training).',
         range=(0, 2**62)),
    Spec('phrasing', 'canonical', 'Instruction wording of the episodes.', choices=PHRASINGS),
    Spec('auto_reset', True, 'Start the next seed when an episode ends.'),
)


class SimRobot(Node):
    """Steps the shared world with the newest command; publishes state and episodes."""

    @destroyed_if_refused
    def __init__(self, session: SimSession, **kwargs):
        super().__init__('sim_robot', **kwargs)
        self.p = declare_all(self, ROBOT_PARAMETERS)
        self.session = session
        session.configure(self.p['control_rate_hz'], self.p['command_interface'])
        self._command = np.zeros(3)
        self._command_s = -1e9
        self._deaf_until_s = -1e9
        self._lock = threading.Lock()
        self.episodes: list[dict] = []
        self.commands_received = 0
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.instruction_pub = self.create_publisher(String, 'instruction', latched)
        self.state_pub = self.create_publisher(JointState, 'joint_states', 10)
        self.episode_pub = self.create_publisher(String, 'sim/episode', latched)
        self.create_subscription(Float64MultiArray, 'command', self.on_command, 10)
        self.create_service(Trigger, 'sim/reset', self.on_reset)
        session.add_listener(self._announce)
        self._next_seed = self.p['first_seed']
        self.running = True
        self.create_timer(1.0 / self.p['control_rate_hz'], self.on_step)

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_command(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (3,) or not np.all(np.isfinite(data)):
            self.get_logger().error(f'ignoring command {list(msg.data)}: need 3 finite values',
                                    throttle_duration_sec=1.0)
            return
        with self._lock:
            if self.now_s() < self._deaf_until_s:
                return   # sent before the reset could be seen (start_episode)
            self._command, self._command_s = data, self.now_s()
            self.commands_received += 1

    def start_episode(self, seed: int | None = None) -> str:
        """Reset the world to `seed`'s start (the robot teleports there). With position targets,
        commands sent before the controller can have seen the new state are void: the stored one
        is forgotten, and those arriving within RESET_DEAF_PERIODS control periods are ignored (a
        target computed from the old episode's position would pull the robot back toward it)."""
        seed = self._next_seed if seed is None else seed
        self._next_seed = seed + 1
        if self.p['command_interface'] == 'position':
            with self._lock:
                self._command_s = -1e9
                self._deaf_until_s = self.now_s() + RESET_DEAF_PERIODS / self.p['control_rate_hz']
        return self.session.reset(seed, self.p['phrasing'])

    def destroy_node(self) -> None:
        """Leave the shared session too: a destroyed robot still listening would fail the next
        reset (its publisher is gone) for the robot that replaced it."""
        session = getattr(self, 'session', None)
        if session is not None:
            session.remove_listener(self._announce)
        super().destroy_node()

    def _announce(self, seed: int, instruction: str) -> None:
        self.instruction_pub.publish(String(data=instruction))
        self.get_logger().info(f'episode seed {seed}: {instruction!r}')

    def on_reset(self, request, response):
        response.message = f'started: {self.start_episode()!r}'
        self.running = True
        response.success = True
        return response

    def _publish_state(self, state: np.ndarray, stamp: Time) -> None:
        js = JointState(name=['x', 'y', 'gripper'],
                        position=[float(state[0]), float(state[1]), float(state[2])],
                        velocity=[float(state[3]), float(state[4]), 0.0])
        js.header.stamp = stamp.to_msg()
        self.state_pub.publish(js)

    def _stamp_state(self) -> Time:
        """Now, as the time of the world's current state (call under the session lock)."""
        stamp = self.get_clock().now()
        self.session.stepped_at = stamp
        return stamp

    def on_step(self) -> None:
        env = self.session.env
        if env.world is None:
            return
        if not self.running:   # paused: nothing moves, but the state is still reported
            with self.session.lock:
                self.session.shown = None
                self._publish_state(env.world.state(), self._stamp_state())
            return
        with self._lock:
            fresh = self.now_s() - self._command_s <= self.p['command_timeout_s']
            command = self._command.copy()
        with self.session.lock:
            if not fresh:   # stop: no velocity, or where it is as the target
                command[:2] = env.world.gripper_pos if self.p['command_interface'] == 'position' \
                    else 0.0
            # Where the robot is now (the last step's motion is done), then this period's
            # motion, which the next step reports (module docstring).
            stamp = self._stamp_state()
            state = env.world.state()
            self.session.shown = env.world.copy()
            env.step(command)
            done = env.success or env.timed_out
            result = {'seed': self.session.seed, 'success': env.success,
                      'time_s': env.world.time_s, 'instruction': env.instruction,
                      'retries': env.retries}
        self._publish_state(state, stamp)
        if done:
            self.episodes.append(result)
            self.episode_pub.publish(String(data=json.dumps(result)))
            if self.p['auto_reset']:
                self.start_episode()
            else:
                self.running = False

CAMERA_PARAMETERS = (
    Spec('rate_hz', 30.0, 'Frame rate.', range=(0.1, 240.0)),
    Spec('frame_id', 'camera', 'header.frame_id of the images.'),
)


class SimCamera(Node):
    """Renders the shared world to sensor_msgs/Image at a fixed rate."""

    @destroyed_if_refused
    def __init__(self, session: SimSession, **kwargs):
        super().__init__('sim_camera', **kwargs)
        p = declare_all(self, CAMERA_PARAMETERS)
        self.session = session
        self.frame_id = p['frame_id']
        self.frames = 0
        self.pub = self.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
        self.create_timer(1.0 / p['rate_hz'], self.on_timer)

    def on_timer(self) -> None:
        rendered = self.session.render_stamped(self.get_clock().now())
        if rendered is None:
            return
        rgb, stamp = rendered
        msg = Image(**rgb_to_image_msg_fields(rgb, 'rgb8'))
        msg.header.stamp = stamp.to_msg()
        msg.header.frame_id = self.frame_id
        self.pub.publish(msg)
        self.frames += 1


def main(args=None):
    """The simulated robot and camera, composed in one process around one world."""
    def make():
        session = SimSession()
        robot = SimRobot(session)
        robot.start_episode()
        return [robot, SimCamera(session)]

    spin_nodes(make, args)
