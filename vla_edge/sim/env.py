"""The simulated task as one object: reset by seed, observe, act, check success."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_edge.sim.expert import expert_action
from vla_edge.sim.render import render
from vla_edge.sim.scenario import Episode, build_world, sample_episode
from vla_edge.sim.tasks import PICKABLE, Task, instruction_for
from vla_edge.sim.world import SimConfig, World


@dataclass
class Observation:
    """What the robot sees and knows at one instant."""

    image: np.ndarray        # (H, W, 3) uint8 RGB
    state: np.ndarray        # (5,) float32: x, y, aperture, vx, vy
    instruction: str
    time_s: float


class TeaTableEnv:
    """'Put the tea bag in the mug' and its variants, deterministic under a seed."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.episode: Episode | None = None
        self.world: World | None = None
        self.task: Task | None = None
        self.instruction = ''
        self._render_rng = np.random.default_rng(0)

    def reset(self, seed: int, phrasing: str = 'canonical', swap_object: bool = False
              ) -> Observation:
        """Start the episode for `seed`.

        `swap_object` keeps the scene but asks for a different object than the seed's task (same
        container), to check that the policy follows the words and not the scene.
        """
        self.episode = sample_episode(seed, self.config)
        task = self.episode.task
        lang_rng = np.random.default_rng([seed, 1])
        if swap_object:
            others = [o for o in PICKABLE if o != task.object_name]
            task = Task(others[int(lang_rng.integers(len(others)))], task.container_name)
        self.task = task
        self.world = build_world(self.episode, self.config, task)
        self.instruction = instruction_for(task, phrasing, lang_rng)
        self._render_rng = np.random.default_rng([seed, 2])
        return self.observe()

    def observe(self) -> Observation:
        w = self._require_world()
        return Observation(image=self.image_of(w), state=w.state(),
                           instruction=self.instruction, time_s=w.time_s)

    def image_of(self, world: World) -> np.ndarray:
        """The camera's view of `world`: this episode's world, now or as it was (a copy)."""
        return render(world, self.episode, self._render_rng)

    def step(self, action: np.ndarray) -> None:
        self._require_world().step(action)

    def expert_action(self) -> np.ndarray:
        """The expert's command for this state, in the world's command interface."""
        world = self._require_world()
        return world.command(expert_action(world, self.task))

    @property
    def success(self) -> bool:
        return self._require_world().is_success(self.task)

    @property
    def retries(self) -> int:
        """How often the robot had to try again: grasps that closed on nothing or on another
        item than the task's, and the task's item let go anywhere but its container. A recovery
        start's own mishap is not counted (dropping the wrong item it starts with is right).
        Reports count these because a retry, not the pipeline, decides a short run's times."""
        world, task = self._require_world(), self.task
        wrong_grasps = sum(name != task.object_name for name in world.grasped)
        misplaced = sum(name == task.object_name and inside != task.container_name
                        for name, inside in world.released)
        return world.missed_grasps + wrong_grasps + misplaced

    @property
    def timed_out(self) -> bool:
        return self._require_world().steps >= self.config.max_steps

    def _require_world(self) -> World:
        if self.world is None:
            raise RuntimeError('call reset(seed) before using the environment')
        return self.world
