import numpy as np

from vla_edge.sim.env import TeaTableEnv
from vla_edge.sim.expert import expert_chunk


def test_expert_solves_98_percent_of_100_held_out_seeds():
    env = TeaTableEnv()
    wins = 0
    for seed in range(1_000_000, 1_000_100):
        env.reset(seed)
        while not env.success and not env.timed_out:
            env.step(env.expert_action())
        wins += env.success
    assert wins >= 98


def test_expert_actions_are_bounded_and_smooth():
    env = TeaTableEnv()
    env.reset(5)
    prev = None
    while not env.success and not env.timed_out:
        a = env.expert_action()
        assert np.all(np.abs(a) <= 1.0 + 1e-9)
        if prev is not None:
            assert np.linalg.norm(a[:2] - prev[:2]) <= 0.08 + 1e-9
        prev = a
        env.step(a)


def test_expert_chunk_replays_the_expert_and_leaves_world_untouched():
    env = TeaTableEnv()
    env.reset(11)
    before = env.world.state().copy()
    chunk = expert_chunk(env.world, env.task, 50)
    assert np.array_equal(env.world.state(), before)
    for a in chunk[:20]:
        assert np.allclose(env.expert_action(), a)
        env.step(a)
