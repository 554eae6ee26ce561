"""The tabletop's physical state and its dynamics, with no rendering.

Kept separate from the renderer so that it is cheap to copy: the scripted expert rolls a copy
forward to label whole action chunks. Coordinates are table units: the table is the unit square
seen from above, x to the right, y down (image convention).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from vla_edge.sim.tasks import CONTAINERS, Task

# Gripper aperture as reported in the robot state: a real parallel gripper's width tells whether it
# closed on something.
APERTURE_OPEN = 1.0
APERTURE_HOLDING = 0.4
APERTURE_EMPTY = 0.0

STATE_NAMES = ('x', 'y', 'aperture', 'vx', 'vy')
ACTION_NAMES = ('vx', 'vy', 'grip')
# What the robot takes as its motion command: a velocity (normalized, |v| = 1 is max_speed) or a
# position target that its controller reaches at up to max_speed, as an arm's position
# controller does. Either way the gripper command is the third number.
COMMAND_INTERFACES = ('velocity', 'position')
# What the sim pipeline and the CLI (demo, eval, faults) run on by default: position targets,
# measured smoother at chunk switches and steadier at an emulated 300 ms (README "Position
# targets"). 'velocity' is the model's own actions, and what SimConfig and EvalConfig default to
# (the Python API is unchanged).
DEFAULT_COMMAND_INTERFACE = 'position'
COMMAND_NAMES = {'velocity': ACTION_NAMES, 'position': ('x', 'y', 'grip')}
STATE_DIM = len(STATE_NAMES)
# The grip command is continuous, the gripper binary: a deadband (as gripper controllers have)
# keeps a hesitant policy output near 0 from toggling it.
GRIP_CLOSE_ABOVE = 0.5
GRIP_OPEN_BELOW = -0.5
ACTION_DIM = len(ACTION_NAMES)


@dataclass(frozen=True)
class SimConfig:
    """Everything about the simulated task that is not random per episode."""

    image_size: int = 128
    control_rate_hz: float = 50.0
    max_speed: float = 0.6          # table units / s at |action| = 1
    grasp_radius: float = 0.05      # gripper centre to object centre, to pick it up
    place_radius: float = 0.06      # object to container centre, to land inside
    time_limit_s: float = 10.0
    recovery_fraction: float = 0.2  # episodes that start from a perturbed or failed state
    min_distractors: int = 1
    max_distractors: int = 3
    workspace_margin: float = 0.03
    command_interface: str = 'velocity'

    def __post_init__(self) -> None:
        if self.command_interface not in COMMAND_INTERFACES:
            raise ValueError(f'command_interface must be one of {COMMAND_INTERFACES}, '
                             f'got {self.command_interface!r}')
        if not 32 <= self.image_size <= 1024:
            raise ValueError(f'image_size={self.image_size} must be in [32, 1024]')
        if not 1.0 <= self.control_rate_hz <= 1000.0:
            raise ValueError(f'control_rate_hz={self.control_rate_hz} must be in [1, 1000]')
        if not 0.0 <= self.recovery_fraction <= 1.0:
            raise ValueError(f'recovery_fraction={self.recovery_fraction} must be in [0, 1]')
        if not 0 <= self.min_distractors <= self.max_distractors <= 3:
            raise ValueError('need 0 <= min_distractors <= max_distractors <= 3')

    @property
    def dt_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def max_steps(self) -> int:
        return int(round(self.time_limit_s * self.control_rate_hz))

    @property
    def workspace(self) -> tuple[list[float], list[float]]:
        """(lower, upper) of the gripper's x and y: where the robot stops."""
        lo, hi = self.workspace_margin, 1.0 - self.workspace_margin
        return [lo, lo], [hi, hi]

    @property
    def max_step_distance(self) -> float:
        """Table units the gripper moves in one control step at |velocity command| = 1."""
        return self.max_speed * self.dt_s


@dataclass
class Item:
    """An object on the table. `inside` names the container it rests in, if any."""

    name: str
    pos: np.ndarray
    inside: str | None = None


@dataclass
class World:
    """Gripper + items. `step` applies one control action of duration dt."""

    config: SimConfig
    items: dict[str, Item]
    gripper_pos: np.ndarray
    gripper_vel: np.ndarray = field(default_factory=lambda: np.zeros(2))
    aperture: float = APERTURE_OPEN
    held: str | None = None
    steps: int = 0
    # What the gripper did, for counting a policy's retries (TeaTableEnv.retries): grasps that
    # closed on nothing, the items it picked up, and where each one it let go of landed.
    missed_grasps: int = 0
    grasped: list[str] = field(default_factory=list)
    released: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def time_s(self) -> float:
        return self.steps * self.config.dt_s

    @property
    def gripper_closed(self) -> bool:
        return self.aperture < APERTURE_OPEN

    def state(self) -> np.ndarray:
        """Robot state as a robot would report it: position, aperture, velocity."""
        return np.array([self.gripper_pos[0], self.gripper_pos[1], self.aperture,
                         self.gripper_vel[0], self.gripper_vel[1]], dtype=np.float32)

    def copy(self) -> World:
        return copy.deepcopy(self)

    def step(self, action: np.ndarray) -> None:
        """Execute one command [vx, vy, grip] or [x, y, grip] (`config.command_interface`).

        A velocity command is clipped to [-1, 1] per axis. A position target is approached at up
        to max_speed (a position controller with a speed limit). grip > GRIP_CLOSE_ABOVE closes
        the gripper, grip < GRIP_OPEN_BELOW opens it, values in between leave it as it is.
        """
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        names = COMMAND_NAMES[self.config.command_interface]
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise ValueError(f'action must be 3 finite numbers [{", ".join(names)}], '
                             f'got {action!r}')
        cfg = self.config
        if cfg.command_interface == 'position':
            velocity = self.velocity_toward(a[:2])
        else:
            velocity = np.clip(a[:2], -1.0, 1.0)
        vel = velocity * cfg.max_speed
        lo, hi = cfg.workspace_margin, 1.0 - cfg.workspace_margin
        new_pos = np.clip(self.gripper_pos + vel * cfg.dt_s, lo, hi)
        self.gripper_vel = (new_pos - self.gripper_pos) / cfg.dt_s
        self.gripper_pos = new_pos
        if a[2] > GRIP_CLOSE_ABOVE and not self.gripper_closed:
            self._close()
        elif a[2] < GRIP_OPEN_BELOW and self.gripper_closed:
            self._open()
        if self.held is not None:
            self.items[self.held].pos = self.gripper_pos.copy()
        self.steps += 1

    def velocity_toward(self, target: np.ndarray) -> np.ndarray:
        """The normalized velocity that reaches `target` this step, its norm capped at 1."""
        offset = np.asarray(target, dtype=np.float64) - self.gripper_pos
        v = offset / self.config.max_step_distance
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 1.0 else v

    def command(self, velocity_action: np.ndarray) -> np.ndarray:
        """A velocity action [vx, vy, grip] as this world's command: itself, or for the position
        interface the position it reaches this step (from here, at its speed capped at 1)."""
        a = np.array(velocity_action, dtype=np.float64).reshape(-1)
        if self.config.command_interface == 'position':
            v = np.clip(a[:2], -1.0, 1.0)
            v /= max(float(np.linalg.norm(v)), 1.0)
            a[:2] = self.gripper_pos + v * self.config.max_step_distance
        return a

    def _close(self) -> None:
        best, best_d = None, self.config.grasp_radius
        for item in self.items.values():
            if item.name in CONTAINERS:
                continue
            d = float(np.linalg.norm(item.pos - self.gripper_pos))
            if d <= best_d:
                best, best_d = item, d
        if best is None:
            self.aperture = APERTURE_EMPTY
            self.missed_grasps += 1
            return
        best.inside = None
        self.held = best.name
        self.grasped.append(best.name)
        self.aperture = APERTURE_HOLDING

    def _open(self) -> None:
        self.aperture = APERTURE_OPEN
        if self.held is None:
            return
        item = self.items[self.held]
        self.held = None
        item.pos = self.gripper_pos.copy()
        for name in CONTAINERS:
            container = self.items[name]
            if np.linalg.norm(container.pos - item.pos) <= self.config.place_radius:
                item.inside = name
                item.pos = container.pos.copy()
                break
        self.released.append((item.name, item.inside))

    def is_success(self, task: Task) -> bool:
        item = self.items[task.object_name]
        return self.held != task.object_name and item.inside == task.container_name
