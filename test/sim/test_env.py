"""The episode-level view of the world: what counts as the robot having to try again."""
import dataclasses

import numpy as np
import pytest

from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.scenario import RECOVERY_STARTS, build_world
from vla_edge.sim.tasks import CONTAINERS, PICKABLE
from vla_edge.sim.world import SimConfig


def _env(start: str) -> TeaTableEnv:
    """An episode whose start is `start` (the first seed that samples it)."""
    env = TeaTableEnv(SimConfig(command_interface='position'))
    for seed in range(1000):
        env.reset(seed)
        if env.episode.start == start:
            return env
    raise AssertionError(f'no seed starts {start!r}')


def _to(env: TeaTableEnv, where, grip: float) -> None:
    """Teleport the gripper to `where` and send one command there with `grip`."""
    env.world.gripper_pos = np.array(where, dtype=float)
    env.step(np.array([*where, grip]))


def test_a_clean_pick_and_place_has_no_retry():
    env = _env('nominal')
    task = env.task
    _to(env, env.world.items[task.object_name].pos, 1.0)
    _to(env, env.world.items[task.container_name].pos, -1.0)
    assert env.success and env.retries == 0


def test_missed_and_wrong_grasps_and_a_misplaced_let_go_each_count_once():
    env = _env('nominal')
    task, items = env.task, env.world.items
    other = next(n for n in PICKABLE if n != task.object_name)
    wrong_container = next(n for n in CONTAINERS if n != task.container_name)
    _to(env, (0.03, 0.03), 1.0)                      # nothing there (items sit in 0.1..0.9)
    _to(env, (0.03, 0.03), -1.0)
    assert env.retries == 1
    _to(env, items[other].pos, 1.0)                  # the wrong item
    _to(env, items[other].pos, -1.0)                 # put back down: not a second retry
    assert env.retries == 2
    _to(env, items[task.object_name].pos, 1.0)       # the right one: no retry
    assert env.retries == 2
    _to(env, items[wrong_container].pos, -1.0)       # into the wrong container
    assert env.retries == 3 and not env.success
    _to(env, items[task.object_name].pos, 1.0)
    _to(env, items[task.container_name].pos, -1.0)
    assert env.success and env.retries == 3


def test_dropping_the_wrong_item_a_recovery_start_holds_is_no_retry():
    env = _env('holding_wrong_object')
    _to(env, (0.5, 0.5), -1.0)
    assert env.world.held is None and env.retries == 0


def test_a_reset_forgets_the_last_episodes_retries():
    env = _env('nominal')
    _to(env, (0.03, 0.03), 1.0)
    assert env.retries == 1
    env.reset(env.episode.seed)
    assert env.retries == 0


def test_letting_go_of_the_task_item_a_recovery_start_holds_outside_its_container_counts():
    env = _env('holding_target')
    _to(env, (0.03, 0.03), -1.0)
    assert env.retries == 1


@pytest.mark.parametrize('start', ('nominal', *RECOVERY_STARTS))
def test_the_scripted_expert_never_retries_from_any_start(start):
    """The expert is the ceiling the policy learns from: every start, done without a retry."""
    env = TeaTableEnv(SimConfig(command_interface='position'))
    for seed in range(8):
        env.reset(seed)
        env.episode = dataclasses.replace(env.episode, start=start)
        env.world = build_world(env.episode, env.config, env.task)
        while not env.success and not env.timed_out:
            env.step(env.expert_action())
        assert env.success and env.retries == 0, (seed, start)
