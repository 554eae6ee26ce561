"""A scripted expert that solves the task from any state, including failed ones.

It reads only what a robot could know (positions from the world, its own velocity), and limits
acceleration, so the demonstrations are smooth: a policy trained on them can be judged on the
smoothness of its chunk switches. Being a function of the state (no hidden memory), it also labels
whole action chunks by rolling a copy of the world forward.
"""
from __future__ import annotations

import numpy as np

from vla_edge.sim.tasks import Task
from vla_edge.sim.world import ACTION_DIM, World

GRASP_TOLERANCE = 0.012   # close when this near the object centre
PLACE_TOLERANCE = 0.02    # open when this near the container centre
APPROACH_GAIN = 5.0       # 1/s: desired speed = gain * distance, so it slows near the goal
MAX_DV_PER_STEP = 0.08    # normalized velocity change per control step


def _toward(world: World, goal: np.ndarray) -> np.ndarray:
    """Acceleration-limited velocity command (normalized) toward `goal`."""
    cfg = world.config
    delta = goal - world.gripper_pos
    dist = float(np.linalg.norm(delta))
    speed = min(1.0, APPROACH_GAIN * dist / cfg.max_speed)
    desired = delta / dist * speed if dist > 1e-9 else np.zeros(2)
    current = world.gripper_vel / cfg.max_speed
    dv = desired - current
    n = float(np.linalg.norm(dv))
    if n > MAX_DV_PER_STEP:
        dv *= MAX_DV_PER_STEP / n
    return current + dv


def _slow_down(world: World) -> np.ndarray:
    return _toward(world, world.gripper_pos)


def expert_action(world: World, task: Task) -> np.ndarray:
    """The expert's action [vx, vy, grip] for this state."""
    out = np.zeros(ACTION_DIM)
    if world.held is not None and world.held != task.object_name:
        out[:2] = _slow_down(world)   # holding the wrong thing: let go where we are
        out[2] = -1.0
    elif world.held == task.object_name:
        goal = world.items[task.container_name].pos
        if np.linalg.norm(goal - world.gripper_pos) <= PLACE_TOLERANCE:
            out[:2] = _slow_down(world)
            out[2] = -1.0
        else:
            out[:2] = _toward(world, goal)
            out[2] = 1.0
    else:
        goal = world.items[task.object_name].pos
        near = np.linalg.norm(goal - world.gripper_pos) <= GRASP_TOLERANCE
        out[:2] = _slow_down(world) if near else _toward(world, goal)
        # Closed on nothing: open first. Open and at the object: close.
        out[2] = 1.0 if (near and not world.gripper_closed) else -1.0
    return out


def expert_chunk(world: World, task: Task, horizon: int) -> np.ndarray:
    """The next `horizon` expert commands from this state, by rolling a copy forward (in the
    world's command interface: velocities, or the positions they reach).

    After success the chunk continues with 'stand still, gripper open', which is what a policy
    should output once the task is done.
    """
    sim = world.copy()
    chunk = np.zeros((horizon, ACTION_DIM))
    for k in range(horizon):
        if sim.is_success(task):
            a = np.zeros(ACTION_DIM)
            a[:2] = _slow_down(sim)
            a[2] = -1.0
        else:
            a = expert_action(sim, task)
        chunk[k] = sim.command(a)
        sim.step(chunk[k])
    return chunk
