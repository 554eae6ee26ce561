"""Seeded episode sampling: the task, the layout, and (for ~20%) a perturbed or failed start.

Everything random about an episode comes from one seed, so an episode is reproducible and seed
ranges can be split between training and evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_edge.sim.tasks import CONTAINERS, DISTRACTORS, PICKABLE, Task, sample_task
from vla_edge.sim.world import APERTURE_EMPTY, APERTURE_HOLDING, Item, SimConfig, World

RECOVERY_STARTS = (
    'holding_wrong_object',      # a failed grasp of the wrong thing: drop it, then do the task
    'closed_on_nothing',         # a missed grasp: open, then do the task
    'holding_target',            # resumed mid-task
    'target_in_wrong_container',  # an earlier wrong placement to undo
)
_MIN_SEPARATION = 0.16
_PLACEMENT_LO, _PLACEMENT_HI = 0.1, 0.9


@dataclass(frozen=True)
class Episode:
    """What one seed decides about an episode (the world itself is built by `build_world`)."""

    seed: int
    task: Task
    start: str                 # 'nominal' or one of RECOVERY_STARTS
    positions: dict[str, tuple[float, float]]
    gripper_start: tuple[float, float]
    handle_angle_rad: float    # mug handle orientation, purely visual
    brightness: float
    table_tint: tuple[float, float, float]
    noise_std: float
    light_dir_rad: float


def _place_items(rng: np.random.Generator, names: list[str]) -> dict[str, tuple[float, float]]:
    for _ in range(1000):
        pts = rng.uniform(_PLACEMENT_LO, _PLACEMENT_HI, size=(len(names), 2))
        d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(len(names))
        if d.min() >= _MIN_SEPARATION:
            return {n: (float(p[0]), float(p[1])) for n, p in zip(names, pts)}
    raise RuntimeError('could not place items without overlap')  # pragma: no cover


def sample_episode(seed: int, config: SimConfig) -> Episode:
    rng = np.random.default_rng(seed)
    task = sample_task(rng)
    n_distractors = int(rng.integers(config.min_distractors, config.max_distractors + 1))
    distractors = [str(x) for x in rng.choice(DISTRACTORS, size=n_distractors, replace=False)]
    positions = _place_items(rng, [*PICKABLE, *CONTAINERS, *distractors])
    start = 'nominal'
    if rng.random() < config.recovery_fraction:
        start = RECOVERY_STARTS[int(rng.integers(len(RECOVERY_STARTS)))]
    return Episode(
        seed=seed, task=task, start=start, positions=positions,
        gripper_start=tuple(float(v) for v in rng.uniform(0.1, 0.9, size=2)),
        handle_angle_rad=float(rng.uniform(0, 2 * np.pi)),
        brightness=float(rng.uniform(0.75, 1.25)),
        table_tint=tuple(float(v) for v in rng.uniform(-15, 15, size=3)),
        noise_std=float(rng.uniform(1.0, 5.0)),
        light_dir_rad=float(rng.uniform(0, 2 * np.pi)),
    )


def build_world(episode: Episode, config: SimConfig, task: Task | None = None) -> World:
    """The episode's world at t=0. `task` overrides the seed's task (the scene is unchanged)."""
    task = task or episode.task
    items = {n: Item(n, np.array(p)) for n, p in episode.positions.items()}
    world = World(config=config, items=items, gripper_pos=np.array(episode.gripper_start))
    if episode.start == 'holding_wrong_object':
        wrong = next(n for n in items if n not in CONTAINERS and n != task.object_name)
        _hold(world, wrong)
    elif episode.start == 'closed_on_nothing':
        world.aperture = APERTURE_EMPTY
    elif episode.start == 'holding_target':
        _hold(world, task.object_name)
    elif episode.start == 'target_in_wrong_container':
        other = next(c for c in CONTAINERS if c != task.container_name)
        items[task.object_name].pos = items[other].pos.copy()
        items[task.object_name].inside = other
    return world


def _hold(world: World, name: str) -> None:
    world.held = name
    world.aperture = APERTURE_HOLDING
    world.items[name].inside = None
    world.items[name].pos = world.gripper_pos.copy()
