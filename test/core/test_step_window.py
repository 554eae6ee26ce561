"""StepWindow: the recent control steps, bounded, in tick order, split into switches and inside."""
import numpy as np
import pytest

from vla_edge.core.step_window import StepWindow


def test_keeps_every_step_until_full():
    w = StepWindow(5)
    for i, switched in enumerate((False, True, False)):
        w.add(float(i), switched)
    assert len(w) == 3
    assert w.inside_steps.tolist() == [0.0, 2.0]
    assert w.switch_steps.tolist() == [1.0]


def test_overwrites_the_oldest_and_keeps_tick_order():
    w = StepWindow(4)
    for i in range(11):   # 0..10; switches at the multiples of 3
        w.add(float(i), i % 3 == 0)
    assert len(w) == 4 and w.size == 4
    assert w.inside_steps.tolist() == [7.0, 8.0, 10.0]
    assert w.switch_steps.tolist() == [9.0]


def test_memory_is_fixed_however_many_steps_are_added():
    w = StepWindow(100)
    for i in range(10_000):
        w.add(i * 0.001, i % 25 == 0)
    assert len(w) == 100
    assert len(w.switch_steps) == 4 and len(w.inside_steps) == 96
    assert w.inside_steps[-1] == pytest.approx(9.999)


def test_split_holds_the_same_steps_as_the_ordered_views():
    w = StepWindow(7)
    for i in range(23):
        w.add(float(i), i % 4 == 0)
    switch, inside = w.split()
    assert sorted(switch.tolist()) == w.switch_steps.tolist() == [16.0, 20.0]
    assert sorted(inside.tolist()) == w.inside_steps.tolist()
    assert len(inside) == 5


def test_empty_window_has_no_steps():
    w = StepWindow(3)
    assert len(w) == 0 and not len(w.switch_steps) and not len(w.inside_steps)
    assert isinstance(w.inside_steps, np.ndarray)


@pytest.mark.parametrize('size', [0, -1])
def test_size_must_be_positive(size):
    with pytest.raises(ValueError, match='at least 1'):
        StepWindow(size)
