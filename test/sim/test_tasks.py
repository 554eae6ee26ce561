import numpy as np
import pytest

from vla_edge.sim.tasks import (
    Task,
    all_tasks,
    canonical_instruction,
    heldout_instructions,
    instruction_for,
    train_instructions,
)


def test_canonical_instruction_reads_naturally():
    assert canonical_instruction(Task('tea_bag', 'mug')) == 'put the tea bag in the mug'


def test_heldout_phrasings_never_appear_in_training():
    train = {s for t in all_tasks() for s in train_instructions(t)}
    held = {s for t in all_tasks() for s in heldout_instructions(t)}
    assert train and held and not train & held


def test_every_task_has_its_own_instructions():
    seen = {}
    for t in all_tasks():
        for s in train_instructions(t) + heldout_instructions(t):
            assert seen.setdefault(s, t) == t


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match='unknown object'):
        Task('banana', 'mug')
    with pytest.raises(ValueError, match='phrasing'):
        instruction_for(Task('tea_bag', 'mug'), 'poetic', np.random.default_rng(0))
