import numpy as np
import pytest

from vla_edge.core.action_queue import ActionQueue


def chunk(n, start=0):
    return np.arange(start, start + n, dtype=float)[:, None].repeat(3, 1)


def test_past_actions_are_dropped_by_exact_count():
    q = ActionQueue()
    dropped = q.install(chunk(50), observation_tick=100, now_tick=107)
    assert dropped == 7
    assert q.action_at(107)[0] == 7          # the action stamped for tick 107
    assert q.remaining(107) == 43


def test_runs_dry_after_the_last_action():
    q = ActionQueue()
    q.install(chunk(5), 0, 0)
    assert q.action_at(4) is not None and q.action_at(5) is None
    assert q.remaining(5) == 0


def test_empty_queue_has_nothing():
    q = ActionQueue()
    assert q.action_at(0) is None and q.remaining(0) == 0


def test_chunk_entirely_in_the_past_leaves_queue_empty():
    q = ActionQueue()
    assert q.install(chunk(10), 0, 25) == 10
    assert q.action_at(25) is None


def test_new_chunk_replaces_the_rest_of_the_old():
    q = ActionQueue()
    q.install(chunk(50), 0, 0)
    q.install(chunk(50, start=1000), 40, 45)
    assert q.action_at(45)[0] == 1005


def test_upcoming_returns_committed_prefix():
    q = ActionQueue()
    q.install(chunk(50), 0, 0)
    assert np.array_equal(q.upcoming(10, 3)[:, 0], [10, 11, 12])


def test_installing_before_observation_is_an_error():
    with pytest.raises(ValueError):
        ActionQueue().install(chunk(5), observation_tick=10, now_tick=5)
