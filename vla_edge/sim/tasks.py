"""What the robot can be asked to do, and the English it can be asked in.

Training phrasings and held-out phrasings are disjoint, and the held-out ones also use synonyms
("teabag", "cup", "cube") that never appear in training, so an evaluation on them measures whether
the instruction encoder carries meaning rather than memorised strings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Objects the gripper can pick up and be asked about, and containers they can be put in.
PICKABLE = ('tea_bag', 'red_block', 'blue_block')
CONTAINERS = ('mug', 'bowl')
# Present in the scene, never named by an instruction: they make the vision-language link matter.
DISTRACTORS = ('yellow_ball', 'green_block', 'purple_block')

_TRAIN_NAMES = {
    'tea_bag': ('tea bag',),
    'red_block': ('red block',),
    'blue_block': ('blue block',),
    'mug': ('mug',),
    'bowl': ('bowl',),
}
_HELDOUT_NAMES = {
    'tea_bag': ('teabag', 'bag of tea'),
    'red_block': ('red cube', 'red brick'),
    'blue_block': ('blue cube', 'blue brick'),
    'mug': ('cup', 'coffee mug'),
    'bowl': ('dish', 'basin'),
}
_TRAIN_TEMPLATES = (
    'put the {o} in the {t}',
    'place the {o} into the {t}',
    'move the {o} to the {t}',
    'pick up the {o} and put it in the {t}',
    'grab the {o} and place it in the {t}',
    'the {o} goes in the {t}',
    '{o} in the {t}',
    'transfer the {o} into the {t}',
)
_HELDOUT_TEMPLATES = (
    'drop the {o} into the {t}',
    'could you put the {o} in the {t}',
    'i want the {o} inside the {t}',
    'stick the {o} in the {t} please',
    'get the {o} into that {t}',
)

PHRASINGS = ('canonical', 'train', 'heldout')


@dataclass(frozen=True)
class Task:
    """An instruction's meaning: which object goes into which container."""

    object_name: str
    container_name: str

    def __post_init__(self) -> None:
        if self.object_name not in PICKABLE:
            raise ValueError(f'unknown object {self.object_name!r}; expected one of {PICKABLE}')
        if self.container_name not in CONTAINERS:
            raise ValueError(
                f'unknown container {self.container_name!r}; expected one of {CONTAINERS}')


def all_tasks() -> list[Task]:
    return [Task(o, c) for o in PICKABLE for c in CONTAINERS]


def sample_task(rng: np.random.Generator) -> Task:
    tasks = all_tasks()
    return tasks[int(rng.integers(len(tasks)))]


def canonical_instruction(task: Task) -> str:
    """The plain phrasing, e.g. 'put the tea bag in the mug'."""
    return _TRAIN_TEMPLATES[0].format(
        o=_TRAIN_NAMES[task.object_name][0], t=_TRAIN_NAMES[task.container_name][0])


def train_instructions(task: Task) -> list[str]:
    """Every phrasing the policy may see in training for this task."""
    return [tpl.format(o=o, t=t)
            for tpl in _TRAIN_TEMPLATES
            for o in _TRAIN_NAMES[task.object_name]
            for t in _TRAIN_NAMES[task.container_name]]


def heldout_instructions(task: Task) -> list[str]:
    """Phrasings (and synonyms) that never appear in training."""
    return [tpl.format(o=o, t=t)
            for tpl in _HELDOUT_TEMPLATES
            for o in _HELDOUT_NAMES[task.object_name]
            for t in _HELDOUT_NAMES[task.container_name]]


def instruction_for(task: Task, phrasing: str, rng: np.random.Generator) -> str:
    """Pick one instruction for `task` in the given phrasing set."""
    if phrasing == 'canonical':
        return canonical_instruction(task)
    if phrasing == 'train':
        options = train_instructions(task)
    elif phrasing == 'heldout':
        options = heldout_instructions(task)
    else:
        raise ValueError(f'unknown phrasing {phrasing!r}; expected one of {PHRASINGS}')
    return options[int(rng.integers(len(options)))]
