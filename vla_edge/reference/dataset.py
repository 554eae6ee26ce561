"""Expert demonstrations for behaviour cloning, collected from the sim.

Half the episodes inject noise into the executed motion (DART-style) so the demonstrations visit the
off-nominal states a learned policy will drift into; the labels are always the expert's clean action
chunk from the state actually reached (a rollout of a copy of the world), so noise never enters the
labels.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.expert import expert_chunk
from vla_edge.sim.tasks import CONTAINERS, DISTRACTORS, PICKABLE, all_tasks
from vla_edge.sim.world import SimConfig

MOTION_NOISE_STD = 0.3
GRIP_FLIP_PROB = 0.005
# Every object type, in the order the vision encoder's first keypoints are supervised to follow.
OBJECT_ORDER = (*PICKABLE, *CONTAINERS, *DISTRACTORS)


@dataclass
class Demonstrations:
    """Flat arrays, one row per recorded control step."""

    images: np.ndarray      # (N, H, W, 3) uint8
    states: np.ndarray      # (N, 5) float32
    task_ids: np.ndarray    # (N,) int64, index into sim.tasks.all_tasks()
    chunks: np.ndarray      # (N, chunk_length, 3) float32, expert actions from this step on
    targets: np.ndarray     # (N, 4) float32: named object xy, named container xy (aux loss)
    object_xy: np.ndarray   # (N, len(OBJECT_ORDER), 2) float32: every object's position
    object_present: np.ndarray  # (N, len(OBJECT_ORDER)) bool: distractors vary per episode

    def __len__(self) -> int:
        return len(self.states)


def _collect_range(args: tuple[int, int, int, int, SimConfig]) -> Demonstrations:
    first_seed, count, stride, horizon, config = args
    env = TeaTableEnv(config)
    task_index = {t: i for i, t in enumerate(all_tasks())}
    rows: dict[str, list] = {k: [] for k in Demonstrations.__dataclass_fields__}
    for seed in range(first_seed, first_seed + count):
        env.reset(seed, phrasing='train')
        noise_rng = np.random.default_rng([seed, 7])
        noisy = noise_rng.random() < 0.5
        while not env.success and not env.timed_out:
            world = env.world
            if world.steps % stride == 0:
                obs = env.observe()
                rows['images'].append(obs.image)
                rows['states'].append(obs.state)
                rows['task_ids'].append(task_index[env.task])
                rows['chunks'].append(expert_chunk(world, env.task, horizon).astype(np.float32))
                rows['targets'].append(np.concatenate(
                    [world.items[env.task.object_name].pos,
                     world.items[env.task.container_name].pos]).astype(np.float32))
                rows['object_xy'].append(np.array(
                    [world.items[n].pos if n in world.items else (0.5, 0.5)
                     for n in OBJECT_ORDER], dtype=np.float32))
                rows['object_present'].append(np.array([n in world.items for n in OBJECT_ORDER]))
            action = env.expert_action()
            if noisy:
                action[:2] += noise_rng.normal(0.0, MOTION_NOISE_STD, size=2)
                if noise_rng.random() < GRIP_FLIP_PROB:
                    action[2] = -action[2]
            env.step(np.clip(action, -1.0, 1.0))
    return Demonstrations(**{k: np.stack(v) for k, v in rows.items()})


def collect_demonstrations(episodes: int, first_seed: int = 0, stride: int = 2,
                           horizon: int = 50, config: SimConfig | None = None,
                           workers: int = 2) -> Demonstrations:
    """Run `episodes` seeded expert episodes (seeds from first_seed), record every `stride` step."""
    config = config or SimConfig()
    if config.command_interface != 'velocity':
        raise ValueError('demonstrations are labelled with velocity actions (the model\'s action '
                         'space); for a position-controlled robot its chunks are integrated into '
                         'position targets at run time (vla_edge/core/position_targets.py)')
    per_job = 25
    jobs = [(s, min(per_job, first_seed + episodes - s), stride, horizon, config)
            for s in range(first_seed, first_seed + episodes, per_job)]
    parts: list[Demonstrations] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in tqdm(pool.map(_collect_range, jobs), total=len(jobs), unit='x25 episodes',
                         desc='collecting demonstrations'):
            parts.append(part)
    return Demonstrations(**{k: np.concatenate([getattr(p, k) for p in parts])
                             for k in Demonstrations.__dataclass_fields__})
